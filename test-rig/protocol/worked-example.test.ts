import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { decodeFrame, encodeFrame, type Frame } from './frame.js';
import { writeFrame } from './writer.js';

// The byte-level examples in docs/rig-protocol.md must be what the codec produces.

const hex = (bytes: Uint8Array) =>
  Buffer.from(bytes)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');

const examples: Frame[] = [
  { version: 1, id: 1, message: { type: 'PRESS', durationMs: 250 } },
  { version: 1, id: 1, message: { type: 'ACK' } },
  { version: 1, id: 0, message: { type: 'CHIME_EDGE', level: 1, tUs: 1_234_567n } },
];

test('the worked examples in docs/rig-protocol.md match the codec byte for byte', async () => {
  const doc = await readFile(new URL('../../docs/rig-protocol.md', import.meta.url), 'utf8');
  for (const frame of examples) {
    const raw = encodeFrame(frame);
    const wire = writeFrame(frame);
    assert.ok(
      doc.includes(`frame  ${hex(raw)}`),
      `doc shows the frame of ${frame.message.type}: ${hex(raw)}`,
    );
    assert.ok(
      doc.includes(`wire   ${hex(wire)}`),
      `doc shows the wire bytes of ${frame.message.type}: ${hex(wire)}`,
    );
    assert.deepEqual(decodeFrame(raw), frame);
  }
});
