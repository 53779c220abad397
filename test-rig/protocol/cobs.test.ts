import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { cobsDecode, cobsEncode, maxEncodedLength } from './cobs.js';
import { isRigError } from './errors.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replaceAll(' ', ''), 'hex'));

test('COBS encodes the reference examples (Cheshire and Baker)', () => {
  const cases: Array<[string, string]> = [
    ['00', '01 01'],
    ['00 00', '01 01 01'],
    ['11 22 00 33', '03 11 22 02 33'],
    ['11 22 33 44', '05 11 22 33 44'],
    ['11 00 00 00', '02 11 01 01 01'],
  ];
  for (const [raw, encoded] of cases) {
    assert.deepEqual(cobsEncode(hex(raw)), hex(encoded), raw);
    assert.deepEqual(cobsDecode(hex(encoded)), hex(raw), encoded);
  }
  const run254 = Uint8Array.from({ length: 254 }, (_, i) => i + 1);
  assert.deepEqual(cobsEncode(run254), Uint8Array.from([0xff, ...run254, 0x01]));
});

test('COBS round-trips any bytes, never emits 0x00, and stays within its size bound', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (data) => {
      const encoded = cobsEncode(data);
      assert.ok(!encoded.includes(0), 'no 0x00 in the encoding');
      assert.ok(encoded.length <= maxEncodedLength(data.length));
      assert.deepEqual(cobsDecode(encoded), data);
    }),
  );
});

test('COBS round-trips runs of non-zero bytes around the 254-byte block boundary', () => {
  fc.assert(
    fc.property(fc.integer({ min: 250, max: 520 }), fc.integer({ min: 1, max: 255 }), (n, b) => {
      const data = new Uint8Array(n).fill(b);
      assert.deepEqual(cobsDecode(cobsEncode(data)), data);
    }),
  );
});

test('COBS decode rejects a 0x00 inside the frame and a code byte that runs past the end', () => {
  for (const bad of ['03 11 00 33', '00', '05 11 22', '03 11 22 05 33']) {
    assert.throws(
      () => cobsDecode(hex(bad)),
      (err) => isRigError(err, 'bad-cobs'),
      bad,
    );
  }
});

test('COBS decode of arbitrary bytes either succeeds or throws bad-cobs, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (junk) => {
      try {
        cobsDecode(junk);
      } catch (err) {
        assert.ok(isRigError(err, 'bad-cobs'), String(err));
      }
    }),
  );
});
