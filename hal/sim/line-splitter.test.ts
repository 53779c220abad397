import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LineSplitter, LineTooLongError } from './line-splitter.js';

test('lines split across chunks are reassembled, multibyte UTF-8 included', () => {
  const splitter = new LineSplitter(100);
  const bytes = Buffer.from('{"a":"é"}\n{"b":2}\npart');
  assert.deepEqual(splitter.push(bytes.subarray(0, 8)), []);
  assert.deepEqual(splitter.push(bytes.subarray(8)), ['{"a":"é"}', '{"b":2}']);
  assert.deepEqual(splitter.push(Buffer.from('ial\n')), ['partial']);
});

test('a line over the cap throws as soon as it is known, then the splitter stays spent', () => {
  const splitter = new LineSplitter(8);
  assert.deepEqual(splitter.push(Buffer.from('12345678\n')), ['12345678']);
  splitter.push(Buffer.from('12345'));
  assert.throws(() => splitter.push(Buffer.from('6789')), LineTooLongError);
  assert.throws(() => splitter.push(Buffer.from('\n')), LineTooLongError);
});

test('property: any chunking of the same bytes yields the same lines', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ maxLength: 20 }), { maxLength: 10 }), fc.nat(50), (parts, cut) => {
      const text = parts.map((p) => `${p.replaceAll('\n', '')}\n`).join('');
      const bytes = Buffer.from(text);
      const at = Math.min(cut, bytes.length);
      const splitter = new LineSplitter(1000);
      const lines = [...splitter.push(bytes.subarray(0, at)), ...splitter.push(bytes.subarray(at))];
      assert.deepEqual(lines, text.split('\n').slice(0, -1));
    }),
  );
});
