import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from './clock.js';
import { ReplyWaiter } from './reply-waiter.js';

class TimeoutError extends Error {
  constructor(
    message: string,
    readonly id: number,
  ) {
    super(message);
  }
}

function waiter(clock = new FakeClock()): ReplyWaiter<number, string> {
  return new ReplyWaiter<number, string>({
    timeoutError: (what, id, ms) =>
      new TimeoutError(`no reply to ${what} (request #${id}) within ${ms} ms`, id),
    clock,
  });
}

test('a reply is delivered to the request with the same id, and only once', async () => {
  const w = waiter();
  const a = w.wait(1, 'PING', 1000);
  const b = w.wait(2, 'INFO', 1000);
  assert.equal(w.deliver(2, 'info'), true);
  assert.equal(w.deliver(1, 'pong'), true);
  assert.equal(w.deliver(1, 'again'), false, 'a late duplicate finds nobody');
  assert.deepEqual(await Promise.all([a, b]), ['pong', 'info']);
  assert.equal(w.size, 0);
});

test("a wait rejects with its owner's timeout error exactly at its deadline on the injected clock", async () => {
  const clock = new FakeClock();
  const w = waiter(clock);
  let settled = false;
  const p = w.wait(42, 'PRESS', 30).finally(() => {
    settled = true;
  });
  clock.advance(29);
  await Promise.resolve();
  assert.equal(settled, false, 'not before the deadline');
  clock.advance(1);
  await assert.rejects(p, (err) => {
    assert.ok(err instanceof TimeoutError);
    assert.equal(err.message, 'no reply to PRESS (request #42) within 30 ms');
    assert.equal(err.id, 42);
    return true;
  });
  assert.equal(w.deliver(42, 'too late'), false);
  assert.equal(clock.pendingTimers(), 0);
});

test('rejectAll fails every pending request with the given error and clears their timers', async () => {
  const clock = new FakeClock();
  const w = waiter(clock);
  const pending = [w.wait(1, 'PRESS', 10_000), w.wait(2, 'LAMP', 10_000)];
  w.rejectAll(new Error('disconnected'));
  for (const p of pending) await assert.rejects(p, /disconnected/);
  assert.equal(w.size, 0);
  assert.equal(clock.pendingTimers(), 0);
});

test('fail() rejects one request, e.g. when its reply arrived but did not decode', async () => {
  const w = waiter();
  const p = w.wait(5, 'INFO', 10_000);
  assert.equal(w.describe(5), 'INFO');
  assert.equal(w.fail(5, new Error('bad value')), true);
  await assert.rejects(p, /bad value/);
  assert.equal(w.fail(5, new Error('again')), false);
});

test('cancel() forgets a request that was never sent: no timer left, nothing settles later', async () => {
  const clock = new FakeClock();
  const w = waiter(clock);
  let settled = false;
  void w.wait(7, 'PING', 100).then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  assert.equal(w.cancel(7), true);
  assert.equal(clock.pendingTimers(), 0);
  clock.advance(1000);
  assert.equal(w.deliver(7, 'late'), false);
  await Promise.resolve();
  assert.equal(settled, false);
});

test('waiting twice on one id is a programming error', () => {
  const w = waiter();
  const p = w.wait(1, 'PING', 10_000);
  assert.throws(() => w.wait(1, 'PING', 10), TypeError);
  w.rejectAll(new Error('test over'));
  p.catch(() => undefined);
});

test('keys may be strings (correlation ids)', async () => {
  const w = new ReplyWaiter<string, number>({ timeoutError: (what) => new Error(what) });
  const p = w.wait('c0ffee', 'mute', 1000);
  assert.equal(w.deliver('c0ffee', 3), true);
  assert.equal(await p, 3);
});
