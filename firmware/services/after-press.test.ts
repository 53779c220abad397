import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AFTER_PRESS_DELAY_MS, AfterPressQueue } from './after-press.js';

test('queued work runs AFTER_PRESS_DELAY_MS later, in order, once', async () => {
  const queue = new AfterPressQueue();
  const ran: number[] = [];
  queue.add(() => ran.push(1));
  queue.add(() => ran.push(2));
  await sleep(1);
  assert.deepEqual(ran, [], 'not while the press event is in flight');
  assert.equal(queue.size, 2);
  await sleep(AFTER_PRESS_DELAY_MS + 20);
  assert.deepEqual(ran, [1, 2]);
  assert.equal(queue.size, 0);
  queue.flush();
  assert.deepEqual(ran, [1, 2], 'a flush after the work ran runs nothing again');
});

test('flush runs waiting work at once, in order, and never a second time', async () => {
  const queue = new AfterPressQueue();
  const ran: number[] = [];
  queue.add(() => ran.push(1));
  queue.add(() => ran.push(2));
  queue.flush();
  assert.deepEqual(ran, [1, 2]);
  assert.equal(queue.size, 0);
  await sleep(AFTER_PRESS_DELAY_MS + 20);
  assert.deepEqual(ran, [1, 2]);
});
