import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc16 } from './crc16.js';

/** The textbook bit-at-a-time CRC, to check the table-driven one against. */
function crc16Bitwise(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

test('CRC-16/CCITT-FALSE of "123456789" is the standard check value 0x29B1', () => {
  assert.equal(crc16(new TextEncoder().encode('123456789')), 0x29b1);
});

test('the CRC of nothing is the initial value 0xFFFF', () => {
  assert.equal(crc16(new Uint8Array(0)), 0xffff);
});

test('the table-driven CRC equals the bitwise definition for any bytes and any range', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), fc.nat(), (bytes, x, y) => {
      const start = bytes.length === 0 ? 0 : x % bytes.length;
      const end = start + (bytes.length === 0 ? 0 : y % (bytes.length - start + 1));
      assert.equal(crc16(bytes, start, end), crc16Bitwise(bytes.subarray(start, end)));
    }),
  );
});
