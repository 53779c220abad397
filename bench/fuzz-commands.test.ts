import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GENERATORS } from './fuzz/generators.js';
import { fuzzCommands } from './fuzz-commands.js';

test('fuzzed commands: no crash, nothing wrongly accepted, controls accepted, the daemon survives without ringing', async () => {
  const lines: string[] = [];
  const result = await fuzzCommands({ cases: 3_000, mqttCases: 300, progress: (l) => lines.push(l) });
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
