import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { anyFrame } from './arbitraries.js';
import type { Frame } from './frame.js';
import { FrameParser } from './parser.js';
import { writeFrame } from './writer.js';

function concat(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

/** Feeds `stream` in chunks of the given sizes (cycled), collecting frames and error count. */
function feed(stream: Uint8Array, sizes: number[]): { frames: Frame[]; errors: number; parser: FrameParser } {
  const parser = new FrameParser();
  const frames: Frame[] = [];
  let errors = 0;
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const size = Math.max(1, sizes.length === 0 ? stream.length : (sizes[i % sizes.length] ?? 1));
    const result = parser.push(stream.subarray(at, at + size));
    frames.push(...result.frames);
    errors += result.errors.length;
    at += size;
  }
  return { frames, errors, parser };
}

/** True when `sub` occurs in `all` in order (not necessarily adjacent). */
function isSubsequence(sub: Frame[], all: Frame[]): boolean {
  let i = 0;
  for (const f of all) {
    const want = sub[i];
    if (want !== undefined && isDeepEqual(want, f)) i++;
  }
  return i === sub.length;
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

test('valid frames split at any chunk boundaries come out exactly, in order, with no errors', () => {
  fc.assert(
    fc.property(
      fc.array(anyFrame, { maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 20 }),
      (frames, sizes) => {
        const out = feed(concat(frames.map(writeFrame)), sizes);
        assert.deepEqual(out.frames, frames);
        assert.equal(out.errors, 0);
        assert.equal(out.parser.pending, 0);
      },
    ),
  );
});

let strayFrames = 0;
test('garbage between frames never throws; every frame that starts after a delimiter is recovered', () => {
  const item = fc.oneof(
    anyFrame.map((frame) => ({ frame })),
    fc.uint8Array({ minLength: 1, maxLength: 1200 }).map((garbage) => ({ garbage })),
    fc
      .uint8Array({ minLength: 1, maxLength: 40 })
      .map((garbage) => ({ garbage: concat([garbage, Uint8Array.of(0)]) })),
  );
  fc.assert(
    fc.property(
      fc.array(item, { maxLength: 10 }),
      fc.array(fc.integer({ min: 1, max: 700 })),
      (items, sizes) => {
        const parts: Uint8Array[] = [];
        const expected: Frame[] = [];
        let lastByte = 0;
        for (const it of items) {
          const bytes = 'frame' in it ? writeFrame(it.frame) : it.garbage;
          if ('frame' in it && lastByte === 0) expected.push(it.frame);
          parts.push(bytes);
          lastByte = bytes[bytes.length - 1] ?? lastByte;
        }
        const out = feed(concat(parts), sizes);
        assert.ok(
          isSubsequence(expected, out.frames),
          'every frame after a delimiter was recovered, in order',
        );
        // Garbage forms a valid frame only by passing a 16-bit CRC and every structural check.
        strayFrames += out.frames.length - expected.length;
      },
    ),
    { numRuns: 300 },
  );
  assert.ok(strayFrames <= 1, `${strayFrames} frames decoded out of random garbage`);
});

test('an oversize frame is dropped up to the next delimiter, counted once, and the next frame survives', () => {
  const next: Frame = { version: 1, id: 9, message: { type: 'ACK' } };
  for (const junkLength of [516, 600, 5000]) {
    const out = feed(
      concat([new Uint8Array(junkLength).fill(0x41), Uint8Array.of(0), writeFrame(next)]),
      [7, 300],
    );
    assert.deepEqual(out.frames, [next]);
    assert.equal(out.parser.errorCounts.oversize, 1, `${junkLength} bytes`);
  }
  const atCap = feed(concat([new Uint8Array(515).fill(0x41), Uint8Array.of(0)]), []);
  assert.equal(atCap.parser.errorCounts.oversize, 0, '515 encoded bytes is the cap, not beyond it');
});

test('any input: the parser never throws and counts one error per rejected frame', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000 }),
      fc.array(fc.integer({ min: 1, max: 100 })),
      (junk, sizes) => {
        const out = feed(junk, sizes);
        const counted = Object.values(out.parser.errorCounts).reduce((a, b) => a + b, 0);
        assert.equal(counted, out.errors);
      },
    ),
  );
});

test('empty frames (delimiters in a row) are ignored, not counted', () => {
  const out = feed(Uint8Array.of(0, 0, 0), []);
  assert.equal(out.errors, 0);
});
