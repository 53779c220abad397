import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type ItemMeta, ItemMetaError, parseItemMeta, serializeItemMeta } from './item-meta.js';

const ITEM = { id: '0000000000007-0123456789ab', sha256: 'ab'.repeat(32) };
const META: ItemMeta = {
  v: 1,
  id: ITEM.id,
  kind: 'clip',
  reason: 'press',
  reasons: ['press', 'motion'],
  startMs: 1_764_000_000_000,
  endMs: 1_764_000_010_000,
  triggerMs: 1_764_000_005_000,
  truncated: false,
  sha256: ITEM.sha256,
  recipients: ['0123456789abcdef'],
};

function parseOrError(bytes: Uint8Array): ItemMeta | ItemMetaError {
  try {
    return parseItemMeta(bytes, ITEM);
  } catch (e) {
    assert.ok(e instanceof ItemMetaError, `not an ItemMetaError: ${String(e)}`);
    return e;
  }
}

describe('sealed item metadata (the record inside StoredItem.meta)', () => {
  it('round-trips', () => {
    assert.deepEqual(parseItemMeta(serializeItemMeta(META), ITEM), META);
  });

  it('property: any bytes, any JSON value and any single-byte change give an ItemMeta of this item or a typed ItemMetaError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5_000 }), (b) => {
        parseOrError(b);
      }),
      { numRuns: 1_000 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        parseOrError(new TextEncoder().encode(JSON.stringify(v) ?? 'null'));
      }),
      { numRuns: 1_000 },
    );
    const good = serializeItemMeta(META);
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), (pos, byte) => {
        const bad = good.slice();
        bad[pos % bad.length] = byte;
        const r = parseOrError(bad);
        if (!(r instanceof ItemMetaError)) {
          assert.equal(r.id, ITEM.id);
          assert.equal(r.sha256, ITEM.sha256);
          assert.ok(r.startMs <= r.endMs);
        }
      }),
      { numRuns: 1_000 },
    );
  });

  it("refuses another item's record: another id, or another file's hash", () => {
    const other = serializeItemMeta({ ...META, id: '0000000000008-0123456789ab' });
    assert.throws(
      () => parseItemMeta(other, ITEM),
      (e: unknown) => e instanceof ItemMetaError && /names item/.test(e.message),
    );
    const moved = serializeItemMeta({ ...META, sha256: 'cd'.repeat(32) });
    assert.throws(
      () => parseItemMeta(moved, ITEM),
      (e: unknown) => e instanceof ItemMetaError && /another file/.test(e.message),
    );
  });

  it('refuses an oversized record, unknown fields and a record ending before it starts', () => {
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(4097).fill(0x20), /too large/],
      [new TextEncoder().encode(JSON.stringify({ ...META, extra: 1 })), /invalid/],
      [new TextEncoder().encode(JSON.stringify({ ...META, endMs: META.startMs - 1 })), /invalid at endMs/],
      [new TextEncoder().encode(JSON.stringify({ ...META, v: 2 })), /invalid at v/],
    ];
    for (const [bytes, why] of cases)
      assert.throws(
        () => parseItemMeta(bytes, ITEM),
        (e: unknown) => e instanceof ItemMetaError && why.test(e.message),
      );
  });
});
