import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzSequences } from './fuzz-sequences.js';

// The full run (100,000 steps or more) is `npm run bench -- fuzz-sequences`; this is a
// pinned slice of it, so that a failure here is reproducible from the seed.
const SEED = 20_261_203;

test('stateful fuzzing, pinned seed: every invariant holds after every step of 3,000', async () => {
  const lines: string[] = [];
  const result = await fuzzSequences({ steps: 3_000, seed: SEED, progress: (l) => lines.push(l) });
  assert.equal(result.failure, undefined, String(result.failure));
  assert.equal(result.ok, true);
  assert.ok(result.steps >= 3_000);
  for (const kind of [
    'signed',
    'stranger',
    'replay',
    'pairer',
    'hold',
    'restart',
    'clock',
    'press',
    'deliver',
  ]) {
    assert.ok(
      (result.steps_by_kind[kind] ?? 0) > 0,
      `no ${kind} step in ${JSON.stringify(result.steps_by_kind)}`,
    );
  }
  assert.ok(result.restarts > 0 && result.presses > 0);
  assert.ok(result.owner_checks > 1_000, 'the owner was checked after most steps');
  for (const kind of [
    'OK',
    'UNAUTHORISED',
    'UNDECODABLE',
    'REPLAY',
    'NOT_YET_VALID',
    'EXPIRED',
    'STALE_EPOCH',
  ]) {
    assert.ok(
      (result.answers_by_kind[kind] ?? 0) > 0,
      `no ${kind} answer in ${JSON.stringify(result.answers_by_kind)}`,
    );
  }
  assert.ok(
    lines.some((l) => l.includes(`seed ${SEED}`)),
    'the seed is reported',
  );
});
