import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { anyFrame } from './arbitraries.js';
import { crc16 } from './crc16.js';
import { isRigError } from './errors.js';
import { decodeFrame, encodeFrame, type Frame } from './frame.js';
import { FrameParser } from './parser.js';
import { writeFrame } from './writer.js';

// What a 16-bit CRC can promise, and what it cannot: CRC-16/CCITT-FALSE has
// Hamming distance 4 for up to 32 751 data bits, so every 1-, 2- and 3-bit
// error in a frame of at most 512 bytes is caught (a guarantee, tested as one).
// Any other corruption passes the CRC with probability 2^-16; those tests count
// and bound rather than promise.

test('1, 2 or 3 flipped bits anywhere in a decoded frame are always caught as bad-crc', () => {
  fc.assert(
    fc.property(anyFrame, fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 3 }), (frame, positions) => {
      const bytes = encodeFrame(frame);
      for (const p of positions) {
        const bit = p % (bytes.length * 8);
        bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      }
      const distinct = new Set(positions.map((p) => p % (bytes.length * 8))).size;
      fc.pre(distinct === positions.length);
      assert.throws(
        () => decodeFrame(bytes),
        (err) => isRigError(err, 'bad-crc'),
      );
    }),
    { numRuns: 500 },
  );
});

let wrongFrames = 0;
test('one flipped bit on the wire (inside COBS) is rejected and the next frame survives; a miss is 2^-16 per frame', () => {
  const next: Frame = { version: 1, id: 2, message: { type: 'PONG', payload: Uint8Array.of(1, 2, 3) } };
  fc.assert(
    fc.property(anyFrame, fc.nat(), (frame, p) => {
      const wire = writeFrame(frame);
      const bit = p % ((wire.length - 1) * 8); // never the delimiter itself
      wire[bit >> 3] = (wire[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      const parser = new FrameParser();
      const first = parser.push(wire);
      const second = parser.push(writeFrame(next));
      // A flip that makes a 0x00 splits the frame in two: two rejections, and the tail may still be pending.
      assert.ok(first.errors.length + first.frames.length >= 1 || parser.pending > 0);
      assert.deepEqual(second.frames.at(-1), next, 'the next frame is recovered');
      wrongFrames += first.frames.length + second.frames.length - 1;
    }),
    { numRuns: 2000, seed: 0x0d00b311 },
  );
  // Expected misses: 2000 * 2^-16 ≈ 0.03. The seed is fixed, so this cannot flake.
  assert.ok(wrongFrames <= 1, `${wrongFrames} corrupted frames accepted`);
});

test('random corruption passes the CRC at about the 2^-16 rate: some do, so the CRC is not the only check (measured, seeded)', () => {
  let state = 0x2545f491;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const trials = 1 << 18;
  const bytes = new Uint8Array(18);
  let passed = 0;
  for (let t = 0; t < trials; t++) {
    for (let i = 0; i < bytes.length; i++) bytes[i] = random() & 0xff;
    const crc = crc16(bytes, 0, 16);
    if ((bytes[16] ?? 0) === (crc & 0xff) && (bytes[17] ?? 0) === crc >> 8) passed++;
  }
  // 2^18 trials * 2^-16 = 4 expected.
  assert.ok(passed >= 1 && passed <= 20, `${passed} of ${trials} random frames passed the CRC`);
});
