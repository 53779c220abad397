import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestIds } from './driver-support.js';
import { isRigError } from './errors.js';
import { rigReplyWaiter } from './waiter.js';

test("the rig driver's timeouts are RigProtocolError(timeout) naming the request type, its id and how long it waited", async () => {
  const waiter = rigReplyWaiter<string>();
  await assert.rejects(waiter.wait(42, 'PRESS', 30), (err) => {
    assert.ok(isRigError(err, 'timeout'));
    assert.match(err.message, /PRESS/);
    assert.match(err.message, /#42/);
    assert.match(err.message, /30 ms/);
    assert.equal(err.requestId, 42);
    return true;
  });
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
