import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MAX_REMAINING_LENGTH, PacketSizeGuard, readFixedHeader } from './mqtt-frames.js';

/** A fixed header: type and flags, then the remaining length as a variable byte integer. */
function fixedHeader(type: number, remainingLength: number): Buffer {
  const bytes = [type << 4];
  let n = remainingLength;
  do {
    const byte = n % 128;
    n = Math.floor(n / 128);
    bytes.push(n > 0 ? byte | 0x80 : byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

test('the fixed header is read at every remaining-length width, and a fifth length byte is malformed', () => {
  for (const length of [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_REMAINING_LENGTH]) {
    const header = fixedHeader(3, length);
    assert.deepEqual(readFixedHeader(header), {
      type: 3,
      flags: 0,
      headerBytes: header.length,
      remainingLength: length,
    });
    assert.equal(readFixedHeader(header.subarray(0, header.length - 1)), 'incomplete');
  }
  assert.equal(readFixedHeader(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), 'malformed');
});

test('the guard names the first packet above the limit however the stream is cut into chunks', () => {
  const limit = 300;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 15 }), fc.integer({ min: 0, max: 400 })), {
        minLength: 1,
        maxLength: 12,
      }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 30 }),
      (packets, cuts) => {
        const stream = Buffer.concat(
          packets.map(([type, length]) =>
            Buffer.concat([fixedHeader(type, length), Buffer.alloc(length, 0xff)]),
          ),
        );
        const firstOversized = packets
          .map(([type, length]) => fixedHeader(type, length).length + length)
          .find((size) => size > limit);
        const guard = new PacketSizeGuard(limit);
        let seen: number | undefined;
        for (let offset = 0, i = 0; offset < stream.length && seen === undefined; i++) {
          const size = cuts[i % cuts.length] ?? 1;
          seen = guard.feed(stream.subarray(offset, offset + size));
          offset += size;
        }
        assert.equal(seen, firstOversized);
      },
    ),
  );
});

test('the guard refuses a remaining length that runs past four bytes', () => {
  const guard = new PacketSizeGuard(1_000);
  assert.equal(guard.feed(Buffer.from([0x30, 0x80, 0x80])), undefined);
  assert.equal(guard.feed(Buffer.from([0x80, 0x80, 0x01])), Number.POSITIVE_INFINITY);
});
