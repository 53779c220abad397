import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock, nsToMs } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { HalError } from './errors.js';
import { SimOutputLine } from './sim/sim-lines.js';
import { BlinkingStatusLed, type LedState } from './status-led.js';

function rig() {
  const clock = new FakeClock(0n);
  const line = new SimOutputLine('led', () => clock.nowNs());
  const changes: Array<[boolean, number]> = [];
  line.observe((on, atNs) => changes.push([on, nsToMs(atNs)]));
  const led = new BlinkingStatusLed(line, { clock, logger: silentLogger() });
  return { clock, line, led, changes };
}

test('on and off are steady and need no timer', async () => {
  const { clock, line, led } = rig();
  led.set('on');
  assert.equal(line.read(), true);
  assert.equal(clock.pendingTimers(), 0);
  led.set('off');
  assert.equal(line.read(), false);
  assert.equal(led.state, 'off');
  await led.close();
});

test('blink-slow toggles every 500 ms; setting it again does not restart it', async () => {
  const { clock, led, changes } = rig();
  led.set('blink-slow');
  clock.advance(400);
  led.set('blink-slow');
  clock.advance(1600);
  assert.deepEqual(changes, [
    [true, 0],
    [false, 500],
    [true, 1000],
    [false, 1500],
    [true, 2000],
  ]);
  await led.close();
});

test('pairing is a double blink once a second; switching state stops the old pattern', async () => {
  const { clock, line, led, changes } = rig();
  led.set('pairing');
  clock.advance(1000);
  assert.deepEqual(changes, [
    [true, 0],
    [false, 100],
    [true, 200],
    [false, 300],
    [true, 1000],
  ]);
  led.set('off');
  clock.advance(5000);
  assert.equal(line.read(), false);
  assert.equal(clock.pendingTimers(), 0);
  await led.close();
});

test('close turns the LED off and stops timers; set after close throws closed; bad state is a TypeError', async () => {
  const { clock, line, led } = rig();
  led.set('blink-fast');
  assert.throws(() => led.set('disco' as LedState), TypeError);
  await led.close();
  await led.close();
  assert.equal(line.peek(), false);
  assert.equal(clock.pendingTimers(), 0);
  assert.throws(
    () => led.set('on'),
    (err) => err instanceof HalError && err.kind === 'closed',
  );
});

test('a failing write is a HalError io from set(), and only logged while blinking', async () => {
  const { clock, line, led } = rig();
  line.failNextWrites(1);
  assert.throws(
    () => led.set('on'),
    (err) => err instanceof HalError && err.kind === 'io',
  );
  assert.equal(led.state, 'off');
  led.set('blink-fast');
  line.failNextWrites(1);
  clock.advance(100);
  assert.equal(line.read(), true, 'the off-write failed');
  clock.advance(200);
  assert.equal(line.read(), false, 'blinking carried on');
  await led.close();
});
