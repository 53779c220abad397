import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Backoff } from './backoff.js';

test('backoff grows exponentially up to the ceiling and resets', () => {
  const top = new Backoff({ minMs: 100, maxMs: 1000, random: () => 1 });
  assert.deepEqual(
    Array.from({ length: 6 }, () => top.next()),
    [100, 200, 400, 800, 1000, 1000],
  );
  top.reset();
  assert.equal(top.next(), 100);
});

test('backoff delays always lie within [minMs, maxMs]', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 10_000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), {
        minLength: 1,
        maxLength: 50,
      }),
      (minMs, extra, randoms) => {
        let i = 0;
        const b = new Backoff({
          minMs,
          maxMs: minMs + extra,
          random: () => randoms[i++ % randoms.length] ?? 0,
        });
        for (let n = 0; n < randoms.length; n++) {
          const d = b.next();
          assert.ok(d >= minMs && d <= minMs + extra, `delay ${d} outside [${minMs}, ${minMs + extra}]`);
        }
      },
    ),
  );
});

test('backoff rejects impossible bounds with a TypeError naming them', () => {
  assert.throws(() => new Backoff({ minMs: 0, maxMs: 10 }), /minMs=0/);
  assert.throws(() => new Backoff({ minMs: 10, maxMs: 5 }), /maxMs=5/);
});
