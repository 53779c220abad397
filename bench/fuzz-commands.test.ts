import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GENERATORS } from './fuzz/generators.js';
import { fuzzCommands } from './fuzz-commands.js';

// A pinned seed: a failure here replays with `npm run bench -- fuzz-commands --seed 20261204`.
// The benchmark draws a fresh seed each run and prints it.
const SEED = 20_261_204;

test('fuzzed commands, pinned seed: no crash, nothing wrongly accepted, controls accepted, the daemon survives without ringing', async () => {
  const lines: string[] = [];
  const result = await fuzzCommands({
    cases: 3_000,
    mqttCases: 300,
    seed: SEED,
    progress: (l) => lines.push(l),
  });
  assert.equal(result.seed, SEED);
  assert.ok(
    lines.some((l) => l.includes(`seed ${SEED}`)),
    'the seed is reported',
  );
  const context = `seed ${result.seed}: ${JSON.stringify(result.failures)}`;
  assert.equal(result.crashes, 0, context);
  assert.equal(result.wrongly_accepted, 0, context);
  assert.equal(result.rejected_controls, 0, context);
  assert.ok(result.accepted_controls > 0, context);
  for (const generator of GENERATORS) {
    if (generator === 'control') continue;
    assert.ok(
      (result.by_generator[generator]?.rejected ?? 0) > 0,
      `${generator} produced no rejection; ${context}`,
    );
  }
  for (const kind of [
    'oversized',
    'undecodable',
    'unknown-key',
    'bad-signature',
    'wrong-device',
    'wrong-topic',
    'expired',
    'not-yet-valid',
  ]) {
    assert.ok((result.rejections_by_kind[kind] ?? 0) > 0, `no '${kind}' rejection; ${context}`);
  }
  assert.equal(result.mqtt_cases, 300);
  assert.ok(result.mqtt_controls > 0);
  assert.equal(result.mqtt_controls_answered_ok, result.mqtt_controls, context);
  assert.equal(result.daemon_alive, true, context);
  assert.equal(result.chime_rings, 0, context);
  assert.equal(result.ok, true, context);
  assert.ok(
    lines.some((l) => l.includes('verifier 100%')),
    'progress is reported',
  );
});
