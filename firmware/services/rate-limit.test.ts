import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimit } from './rate-limit.js';

test('a burst of perSecond, then one per 1/perSecond s', () => {
  let now = 1_000_000;
  const limit = new RateLimit(10, () => now);
  let taken = 0;
  while (limit.tryTake()) taken += 1;
  assert.equal(taken, 10);
  now += 100;
  assert.equal(limit.tryTake(), true);
  assert.equal(limit.tryTake(), false);
});

test('a clock set back an hour does not empty the bucket for an hour', () => {
  let now = 10_000_000;
  const limit = new RateLimit(10, () => now);
  assert.equal(limit.tryTake(), true);
  now -= 3_600_000;
  assert.equal(limit.tryTake(), true, 'the tokens left are still there');
  while (limit.tryTake());
  now += 1_000;
  assert.equal(limit.tryTake(), true, 'a second later (on the new clock) it refills');
});
