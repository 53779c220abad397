import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { percentile, summary } from './stats.js';

test('percentile by nearest rank', () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  assert.equal(percentile(v, 50), 50);
  assert.equal(percentile(v, 99), 99);
  assert.equal(percentile(v, 100), 100);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.deepEqual(summary([1, 2, 3, 4]), { n: 4, p50: 2, p90: 4, p99: 4, max: 4 });
});

test('percentiles are members of the data, ordered by p', () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 200 }),
      (v) => {
        const p50 = percentile(v, 50);
        const p99 = percentile(v, 99);
        assert.ok(v.includes(p50) && v.includes(p99));
        assert.ok(p50 <= p99);
      },
    ),
  );
});
