import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestIds } from './driver-support.js';
import { isRigError, RigProtocolError } from './errors.js';
import { ReplyWaiter } from './waiter.js';

test('a reply is delivered to the request with the same id, and only once', async () => {
  const waiter = new ReplyWaiter<string>();
  const a = waiter.wait(1, 'PING', 1000);
  const b = waiter.wait(2, 'INFO', 1000);
  assert.equal(waiter.deliver(2, 'info'), true);
  assert.equal(waiter.deliver(1, 'pong'), true);
  assert.equal(waiter.deliver(1, 'again'), false, 'a late duplicate finds nobody');
  assert.deepEqual(await Promise.all([a, b]), ['pong', 'info']);
  assert.equal(waiter.size, 0);
});

test('the timeout error names the request type, its id and how long it waited', async () => {
  const waiter = new ReplyWaiter<string>();
  await assert.rejects(waiter.wait(42, 'PRESS', 30), (err) => {
    assert.ok(isRigError(err, 'timeout'));
    assert.match(err.message, /PRESS/);
    assert.match(err.message, /#42/);
    assert.match(err.message, /30 ms/);
    assert.equal(err.requestId, 42);
    return true;
  });
  assert.equal(waiter.deliver(42, 'too late'), false);
});

test('rejectAll fails every pending request with the given error (e.g. disconnected)', async () => {
  const waiter = new ReplyWaiter<string>();
  const pending = [waiter.wait(1, 'PRESS', 10_000), waiter.wait(2, 'LAMP', 10_000)];
  waiter.rejectAll(new RigProtocolError('disconnected', 'gone'));
  for (const p of pending) await assert.rejects(p, (err) => isRigError(err, 'disconnected'));
  assert.equal(waiter.size, 0);
});

test('fail() rejects one request, e.g. when its reply arrived but did not decode', async () => {
  const waiter = new ReplyWaiter<string>();
  const p = waiter.wait(5, 'INFO', 10_000);
  assert.equal(waiter.describe(5), 'INFO');
  waiter.fail(5, new RigProtocolError('bad-value', 'flags'));
  await assert.rejects(p, (err) => isRigError(err, 'bad-value'));
});

test('waiting twice on one id is a programming error', () => {
  const waiter = new ReplyWaiter<string>();
  const p = waiter.wait(1, 'PING', 10_000);
  assert.throws(() => waiter.wait(1, 'PING', 10), TypeError);
  waiter.rejectAll(new RigProtocolError('closed', 'test over'));
  p.catch(() => undefined);
});

test('request ids run 1..65535, wrap around skipping 0, and skip ids still in flight', () => {
  const ids = new RequestIds();
  const seen: number[] = [];
  for (let i = 0; i < 65_535; i++) seen.push(ids.next(() => false));
  assert.equal(seen[0], 1);
  assert.equal(seen.at(-1), 65_535);
  assert.equal(
    ids.next(() => false),
    1,
    'wraps to 1, never 0',
  );
  assert.equal(
    ids.next((id) => id === 2 || id === 3),
    4,
    'in-flight ids are skipped',
  );
  assert.throws(() => new RequestIds().next(() => true), TypeError);
});
