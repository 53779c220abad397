import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { FakeClock } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { type HalConfig, parseHalConfig } from './config.js';
import { HalError } from './errors.js';
import { createHal } from './index.js';

test('createHal builds the sim devices on shared code, with the fake clock', async () => {
  const clock = new FakeClock();
  const hal = await createHal(parseHalConfig({ chime: { pulseMs: 100 } }), { logger: silentLogger(), clock });
  const sim = hal.sim;
  assert.ok(sim, 'the sim backend exposes its wires');
  assert.equal(hal.chime.mode, 'mechanical');
  const events: string[] = [];
  hal.button.subscribe((e) => {
    events.push(e.type);
    if (e.type === 'press') hal.chime.ring();
  });
  sim.buttonLine.set(true, clock.nowNs());
  clock.advance(30);
  assert.deepEqual(events, ['press']);
  assert.equal(sim.chimeState(), true, 'rang inside the press callback');
  clock.advance(100);
  assert.equal(sim.chimeState(), false);
  hal.led.set('on');
  assert.equal(sim.ledState(), true);
  await hal.close();
  await hal.close();
  assert.equal(sim.ledState(), false);
  assert.equal(clock.pendingTimers(), 0);
});

test('close forces a ringing chime off', async () => {
  const hal = await createHal(parseHalConfig({}), { logger: silentLogger(), clock: new FakeClock() });
  hal.chime.ring();
  assert.equal(hal.sim?.chimeState(), true);
  await hal.close();
  assert.equal(hal.sim?.chimeState(), false);
});

test('an invalid config is refused with HalError invalid-config listing the paths', async () => {
  const bad = { ...parseHalConfig({}), chime: { ...parseHalConfig({}).chime, maxOnMs: 5000 } } as HalConfig;
  await assert.rejects(
    createHal(bad, { logger: silentLogger() }),
    (err) => err instanceof HalError && err.kind === 'invalid-config' && /chime\.maxOnMs/.test(err.message),
  );
});

test('the linux backend explains a kernel without sysfs GPIO', async (t) => {
  if (existsSync('/sys/class/gpio')) {
    t.skip('this machine has /sys/class/gpio; the real lines are tested by hal/contract/linux.test.ts');
    return;
  }
  const gpio = (line: number) => ({ gpio: { chip: 'gpiochip0', line } });
  const config = parseHalConfig({ backend: 'linux', button: gpio(17), chime: gpio(27), led: gpio(22) });
  await assert.rejects(
    createHal(config, { logger: silentLogger() }),
    (err) => err instanceof HalError && err.kind === 'unavailable' && /CONFIG_GPIO_SYSFS/.test(err.message),
  );
});
