import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { Outbox } from './outbox.js';

const entry = (n: number) => ({ topic: 't', payload: Uint8Array.of(n), retain: false });

test('outbox keeps order and removes only acknowledged heads', () => {
  const box = new Outbox(10, silentLogger());
  const [a, b] = [entry(1), entry(2)];
  box.push(a);
  box.push(b);
  assert.equal(box.head(), a);
  box.ack(b); // not the head: ignored
  assert.equal(box.depth, 2);
  box.ack(a);
  assert.equal(box.head(), b);
});

test('a full outbox drops the oldest and counts it', () => {
  const box = new Outbox(3, silentLogger());
  for (let i = 0; i < 5; i++) box.push(entry(i));
  assert.equal(box.depth, 3);
  assert.equal(box.dropped, 2);
  assert.equal(box.head()?.payload[0], 2);
});

test('push listeners run synchronously, once per push, until removed', () => {
  const box = new Outbox(3, silentLogger());
  const depths: number[] = [];
  const off = box.onPush(() => depths.push(box.depth));
  box.push(entry(1));
  box.push(entry(2));
  off();
  box.push(entry(3));
  assert.deepEqual(depths, [1, 2]);
});

test('whenEmpty resolves once the last entry is acknowledged, and at once on an empty outbox', async () => {
  const box = new Outbox(10, silentLogger());
  await box.whenEmpty();
  const [a, b] = [entry(1), entry(2)];
  box.push(a);
  box.push(b);
  let empty = false;
  const drained = box.whenEmpty().then(() => {
    empty = true;
  });
  box.ack(a);
  await Promise.resolve();
  assert.equal(empty, false, 'one entry is still waiting');
  box.ack(b);
  await drained;
  assert.equal(empty, true);
});
