import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../common/clock.js';
import { AFTER_PRESS_DELAY_MS, AfterPressQueue } from './after-press.js';

test('queued work runs AFTER_PRESS_DELAY_MS later on its clock, in order, once', () => {
  const clock = new FakeClock();
  const queue = new AfterPressQueue(clock);
  const ran: number[] = [];
  queue.add(() => ran.push(1));
  queue.add(() => ran.push(2));
  clock.advance(AFTER_PRESS_DELAY_MS - 0.1);
  assert.deepEqual(ran, [], 'not while the press event is in flight');
  assert.equal(queue.size, 2);
  clock.advance(0.1);
  assert.deepEqual(ran, [1, 2]);
  assert.equal(queue.size, 0);
  queue.flush();
  assert.deepEqual(ran, [1, 2], 'a flush after the work ran runs nothing again');
});

test('flush runs waiting work at once, in order, and never a second time', () => {
  const clock = new FakeClock();
  const queue = new AfterPressQueue(clock);
  const ran: number[] = [];
  queue.add(() => ran.push(1));
  queue.add(() => ran.push(2));
  queue.flush();
  assert.deepEqual(ran, [1, 2]);
  assert.equal(queue.size, 0);
  assert.equal(clock.pendingTimers(), 0, 'the flushed work left no timer');
  clock.advance(AFTER_PRESS_DELAY_MS * 10);
  assert.deepEqual(ran, [1, 2]);
});
