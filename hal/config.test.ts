import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHalConfig } from './config.js';
import { HalError } from './errors.js';

test('an empty config gets every default', () => {
  const config = parseHalConfig({});
  assert.equal(config.backend, 'sim');
  assert.deepEqual(config.button, {
    activeLow: true,
    pull: 'up',
    minPressMs: 30,
    lockoutMs: 500,
    holdMs: 5000,
  });
  assert.equal(config.chime.mode, 'mechanical');
  assert.equal(config.chime.pulseMs, 250);
  assert.equal(config.chime.maxOnMs, 1000);
  assert.equal(config.chime.minGapMs, 250);
  assert.equal(config.chime.pattern.length, 3);
  assert.deepEqual(config.led, { activeLow: false });
  assert.deepEqual(config.sim, {});
});

function problems(input: unknown): string {
  try {
    parseHalConfig(input);
  } catch (err) {
    assert.ok(err instanceof HalError);
    assert.equal(err.kind, 'invalid-config');
    return err.message;
  }
  assert.fail('expected the config to be refused');
}

test('maxOnMs cannot be raised above 1000 ms, and bounds are enforced', () => {
  assert.match(problems({ chime: { maxOnMs: 5000 } }), /chime\.maxOnMs/);
  assert.match(problems({ chime: { pulseMs: 5000 } }), /chime\.pulseMs/);
  assert.match(problems({ chime: { pattern: [{ onMs: 3000, offMs: 0 }] } }), /chime\.pattern\.0\.onMs/);
  assert.match(problems({ button: { holdMs: 10 } }), /button\.holdMs/);
  assert.match(problems({ button: { gpio: { chip: 'gpiochip0', line: -1 } } }), /button\.gpio\.line/);
});

test('all problems are listed by path at once; unknown keys are refused', () => {
  const message = problems({ backend: 'zephyr', button: { minPressMs: 1, colour: 'red' } });
  assert.match(message, /backend/);
  assert.match(message, /button\.minPressMs/);
  assert.match(message, /colour/);
});

test("backend 'linux' requires the gpio fields, with paths", () => {
  const message = problems({ backend: 'linux', button: { minPressMs: 1 } });
  assert.match(message, /button\.minPressMs/);
  assert.match(message, /button\.gpio: button\.gpio is required/);
  assert.match(message, /chime\.gpio/);
  assert.match(message, /led\.gpio/);
  const gpio = (line: number) => ({ gpio: { chip: 'gpiochip0', line } });
  const config = parseHalConfig({
    backend: 'linux',
    button: gpio(17),
    chime: { mode: 'none' },
    led: gpio(22),
  });
  assert.equal(config.chime.gpio, undefined);
  assert.deepEqual(config.button.gpio, { chip: 'gpiochip0', line: 17 });
});
