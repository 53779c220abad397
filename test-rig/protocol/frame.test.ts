import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { anyFrame, messageOf } from './arbitraries.js';
import { crc16 } from './crc16.js';
import { isRigError } from './errors.js';
import { decodeFrame, encodeFrame, type Frame } from './frame.js';
import { MAX_FRAME_BYTES, MESSAGE_TYPES } from './message-types.js';

test('every message type round-trips through frame encode/decode with random fields and ids', () => {
  for (const type of MESSAGE_TYPES) {
    fc.assert(
      fc.property(messageOf(type), fc.integer({ min: 0, max: 0xffff }), (message, id) => {
        const frame = { version: 1, id, message };
        const bytes = encodeFrame(frame);
        assert.ok(bytes.length <= MAX_FRAME_BYTES);
        assert.deepEqual(decodeFrame(bytes), frame);
      }),
      { numRuns: 60 },
    );
  }
});

test('the frame layout: version, type, id LE, length LE, payload, CRC LE over the rest', () => {
  const bytes = encodeFrame({ version: 1, id: 0x1234, message: { type: 'PRESS', durationMs: 100 } });
  assert.deepEqual(
    Buffer.from(bytes.subarray(0, 10)).toString('hex'),
    ['01', '10', '3412', '0400', '64000000'].join(''),
  );
  const crc = crc16(bytes, 0, 10);
  assert.deepEqual([...bytes.subarray(10)], [crc & 0xff, crc >> 8]);
});

/** Re-stamps the CRC so that checks after it are reached. */
function withCrc(bytes: number[]): Uint8Array {
  const out = Uint8Array.from([...bytes, 0, 0]);
  const crc = crc16(out, 0, out.length - 2);
  out[out.length - 2] = crc & 0xff;
  out[out.length - 1] = crc >> 8;
  return out;
}

test('decode rejects each kind of bad frame with its kind, carrying the id once the CRC matched', () => {
  const cases: Array<[string, Uint8Array]> = [
    ['bad-length', Uint8Array.of(1, 0x20, 1, 0, 0, 0, 0)],
    ['oversize', new Uint8Array(MAX_FRAME_BYTES + 1)],
    ['bad-crc', Uint8Array.of(1, 0x20, 1, 0, 0, 0, 0, 0)],
    ['unsupported-version', withCrc([2, 0x20, 7, 0, 0, 0])],
    ['bad-length', withCrc([1, 0x20, 7, 0, 1, 0])],
    ['unknown-type', withCrc([1, 0x7f, 7, 0, 0, 0])],
    ['bad-length', withCrc([1, 0x10, 7, 0, 2, 0, 1, 0])],
    ['bad-value', withCrc([1, 0x10, 7, 0, 4, 0, 0, 0, 0, 0])],
    ['bad-value', withCrc([1, 0x14, 7, 0, 1, 0, 2])],
    ['bad-value', withCrc([1, 0x21, 7, 0, 2, 0, 1, 0xff])],
  ];
  for (const [kind, bytes] of cases) {
    assert.throws(
      () => decodeFrame(bytes),
      (err) => isRigError(err) && err.kind === kind,
      `${kind}: ${Buffer.from(bytes.subarray(0, 12)).toString('hex')}`,
    );
  }
  assert.throws(
    () => decodeFrame(withCrc([1, 0x7f, 7, 0, 0, 0])),
    (err) => isRigError(err) && err.requestId === 7,
  );
});

test('encode refuses fields out of range before anything is sent', () => {
  const bad: Frame[] = [
    { version: 1, id: 1, message: { type: 'PRESS', durationMs: 0 } },
    { version: 1, id: 1, message: { type: 'HOLD', durationMs: 600_001 } },
    { version: 1, id: 1, message: { type: 'BOUNCE', edges: 0, spacingUs: 1, settleMs: 0 } },
    { version: 1, id: 1, message: { type: 'HELLO', versions: [] } },
    { version: 1, id: 1, message: { type: 'PING', payload: new Uint8Array(505) } },
    {
      version: 1,
      id: 1,
      message: { type: 'HELLO_ACK', version: 1, capabilities: 0, firmware: 'x'.repeat(65), serial: '' },
    },
    { version: 1, id: 70_000, message: { type: 'ACK' } },
  ];
  for (const frame of bad) {
    assert.throws(
      () => encodeFrame(frame),
      (err) => isRigError(err, 'bad-value'),
      JSON.stringify(frame),
    );
  }
});

test('any frame decodes to exactly itself (mixed types)', () => {
  fc.assert(fc.property(anyFrame, (frame) => assert.deepEqual(decodeFrame(encodeFrame(frame)), frame)));
});
