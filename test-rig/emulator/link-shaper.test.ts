import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../common/clock.js';
import { LinkShaper } from './link-shaper.js';

const collect = (faults: ConstructorParameters<typeof LinkShaper>[0]) => {
  const got: number[] = [];
  const shaper = new LinkShaper(faults, (b) => got.push(...b));
  return { got, shaper };
};
const bytes = Uint8Array.from({ length: 2000 }, (_, i) => (i % 255) + 1);

test('without faults the shaper passes bytes through synchronously and unchanged', () => {
  const { got, shaper } = collect({});
  shaper.push(bytes);
  assert.deepEqual(Uint8Array.from(got), bytes);
});

test('drops and corruption are seeded: the same seed damages the same bytes', () => {
  const runs = [1, 1, 2].map((seed) => {
    const { got, shaper } = collect({ dropRate: 0.05, corruptRate: 0.05, seed });
    shaper.push(bytes);
    return { got, stats: shaper.stats };
  });
  assert.deepEqual(runs[0]?.got, runs[1]?.got, 'same seed, same bytes');
  assert.notDeepEqual(runs[0]?.got, runs[2]?.got, 'another seed, other damage');
  const s = runs[0]?.stats;
  assert.ok(s && s.dropped > 40 && s.dropped < 180, `about 5% dropped: ${s?.dropped}`);
  assert.ok(s && s.corrupted > 40 && s.corrupted < 180, `about 5% corrupted: ${s?.corrupted}`);
  assert.equal(runs[0]?.got.length, 2000 - (s?.dropped ?? 0));
});

test('latency, jitter and delays never reorder chunks, and stop() drops what is in flight', () => {
  const clock = new FakeClock();
  const got: number[] = [];
  const shaper = new LinkShaper(
    { latencyMs: 2, jitterMs: 10, delayRate: 0.3, delayMs: 15, seed: 9 },
    (b) => got.push(...b),
    clock,
  );
  for (let i = 1; i <= 50; i++) shaper.push(Uint8Array.of(i));
  assert.equal(got.length, 0, 'nothing arrives before the latency');
  clock.advance(1.9);
  assert.equal(got.length, 0, 'nothing before the 2 ms latency');
  clock.advance(400);
  assert.deepEqual(
    got,
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  assert.ok(shaper.stats.delayed > 0);
  shaper.push(Uint8Array.of(99));
  shaper.stop();
  clock.advance(1000);
  assert.equal(got.length, 50, 'the chunk in flight at stop() never arrives');
  assert.equal(clock.pendingTimers(), 0);
});

test('bad fault settings are TypeErrors naming the field', () => {
  assert.throws(() => new LinkShaper({ dropRate: 2 }, () => {}), /dropRate/);
  assert.throws(() => new LinkShaper({ latencyMs: -1 }, () => {}), /latencyMs/);
});
