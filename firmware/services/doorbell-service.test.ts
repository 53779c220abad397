import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../common/clock.js';
import { silentLogger } from '../../common/logger.js';
import { parseHalConfig } from '../../hal/config.js';
import { createHal } from '../../hal/index.js';
import { AFTER_PRESS_DELAY_MS } from './after-press.js';
import { DoorbellService } from './doorbell-service.js';
import type { EventBody } from './event-signer.js';

async function pressedDoorbell() {
  const clock = new FakeClock();
  const hal = await createHal(parseHalConfig({}), { logger: silentLogger(), clock });
  const emitted: string[] = [];
  const service = new DoorbellService({
    ...hal,
    emit: (body: EventBody) => emitted.push(Object.keys(body).join(',')),
    nowMs: () => 1_000,
    clock,
    logger: silentLogger(),
  });
  service.start();
  hal.sim?.buttonLine.set(true, clock.nowNs());
  clock.advance(30);
  return { hal, service, emitted, clock };
}

test('the press event goes at once; ChimeRang and the LED follow AFTER_PRESS_DELAY_MS later', async () => {
  const { hal, service, emitted, clock } = await pressedDoorbell();
  try {
    assert.deepEqual(emitted, ['buttonPressed']);
    assert.equal(hal.sim?.chimeState(), true, 'the chime rang in the press callback');
    clock.advance(AFTER_PRESS_DELAY_MS - 0.1);
    assert.deepEqual(emitted, ['buttonPressed'], 'nothing else while the press event is in flight');
    clock.advance(0.1);
    assert.deepEqual(emitted, ['buttonPressed', 'chimeRang']);
    assert.equal(hal.led.state, 'blink-fast');
  } finally {
    service.stop();
    await hal.close();
  }
});

test('stop runs waiting after-press work at once, so a press just before a shutdown keeps its ChimeRang', async () => {
  const { hal, service, emitted, clock } = await pressedDoorbell();
  service.stop();
  assert.deepEqual(emitted, ['buttonPressed', 'chimeRang'], 'queued while the outbox is still open');
  clock.advance(AFTER_PRESS_DELAY_MS * 10);
  assert.deepEqual(emitted, ['buttonPressed', 'chimeRang'], 'and not a second time');
  await hal.close();
});
