import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  fileName,
  type IndexEntry,
  IndexError,
  MAX_INDEX_BYTES,
  metaFileName,
  newId,
  parseFileName,
  parseIndex,
  parseLegacyFileName,
  serializeIndex,
} from './index-file.js';

const entryArb: fc.Arbitrary<IndexEntry> = fc
  .record({
    seq: fc.integer({ min: 0, max: 9_999_999_999_999 }),
    r: fc.stringMatching(/^[0-9a-f]{12}$/),
    storedBucketMs: fc.integer({ min: 0, max: 2 ** 45 }),
    bytes: fc.integer({ min: 0, max: 2 ** 40 }),
    sha256: fc.stringMatching(/^[0-9a-f]{64}$/),
  })
  .map(({ seq, r, ...rest }) => ({ id: `${seq.toString().padStart(13, '0')}-${r}`, ...rest }));

function parseOrError(bytes: Uint8Array): IndexEntry[] | IndexError {
  try {
    return parseIndex(bytes);
  } catch (e) {
    assert.ok(e instanceof IndexError, `not an IndexError: ${String(e)}`);
    return e;
  }
}

describe('index file', () => {
  it('property: any bytes give a valid index or a typed IndexError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2_000 }), (bytes) => {
        const r = parseOrError(bytes);
        if (!(r instanceof IndexError)) for (const e of r) assert.ok(parseFileName(fileName(e)));
      }),
      { numRuns: 2_000 },
    );
  });

  it('property: any JSON value gives a valid index or a typed IndexError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        parseOrError(new TextEncoder().encode(JSON.stringify(v) ?? 'null'));
      }),
      { numRuns: 1_000 },
    );
  });

  it('property: an index round-trips, sorted by id; any single-byte corruption is caught or harmless', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(entryArb, { maxLength: 20, selector: (e) => e.id }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (entries, pos, byte) => {
          const bytes = serializeIndex(entries);
          const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : 1));
          assert.deepEqual(parseIndex(bytes), sorted);
          const bad = bytes.slice();
          bad[pos % bad.length] = byte;
          const r = parseOrError(bad);
          if (!(r instanceof IndexError)) {
            // Accepted: then every entry is still well-formed and names a valid file.
            for (const e of r) {
              assert.deepEqual(parseFileName(fileName(e)), {
                id: e.id,
                storedBucketMs: e.storedBucketMs,
                meta: false,
              });
            }
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('refuses an oversized index before parsing it, and names what is wrong', () => {
    assert.throws(
      () => parseIndex(new Uint8Array(MAX_INDEX_BYTES + 1)),
      (e: unknown) => e instanceof IndexError && e.kind === 'too-large',
    );
    assert.throws(
      () => parseIndex(new TextEncoder().encode('{"version":1')),
      (e: unknown) => e instanceof IndexError && e.kind === 'not-json',
    );
    assert.throws(
      () => parseIndex(new Uint8Array([0xff, 0xfe])),
      (e: unknown) => e instanceof IndexError && e.kind === 'not-json',
    );
    assert.throws(
      () => parseIndex(new TextEncoder().encode('{"version":3,"entries":[]}')),
      (e: unknown) => e instanceof IndexError && e.kind === 'invalid' && e.message.includes('version'),
    );
  });

  it('file names carry only the id and the store period, and refuse anything else', () => {
    const e = { id: newId(42), storedBucketMs: 1_764_028_800_000 };
    assert.match(e.id, /^0000000000042-[0-9a-f]{12}$/);
    assert.equal(fileName(e), `${e.id}_1764028800000.age`);
    assert.deepEqual(parseFileName(fileName(e)), { ...e, meta: false });
    assert.deepEqual(parseFileName(metaFileName(e)), { ...e, meta: true });
    for (const bad of [
      'x.age',
      `${e.id}_01764028800000.age`,
      `${e.id}_${2 ** 53}.age`,
      `${e.id}_1764028800000.age.tmp`,
      `${e.id}_1764028800000.meta`,
      `${e.id}_clip_press_1_2_1.age`,
      `../${fileName(e)}`,
    ]) {
      assert.equal(parseFileName(bad), undefined, bad);
    }
  });

  it("an earlier version's file names are read for conversion, and nothing else is", () => {
    const name = '1764000000000-0123456789ab_clip_press_1_2_1.age';
    assert.deepEqual(parseLegacyFileName(name), {
      name,
      id: '1764000000000-0123456789ab',
      kind: 'clip',
      reason: 'press',
      startMs: 1,
      endMs: 2,
      triggerMs: 1,
    });
    for (const bad of [
      '1764000000000-0123456789ab_clip_press_2_1_1.age',
      '1764000000000-0123456789ab_clip_Press_1_2_1.age',
      '1764000000000-0123456789ab_clip_press_01_2_1.age',
      `1764000000000-0123456789ab_clip_press_1_2_${2 ** 53}.age`,
      '1764000000000-0123456789ab_1764028800000.age',
    ]) {
      assert.equal(parseLegacyFileName(bad), undefined, bad);
    }
  });
});
