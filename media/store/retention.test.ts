import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import fc from 'fast-check';
import { waitFor } from '../../test-support/wait-for.js';
import type { StoreEvent } from './clip-store.js';
import { expiresAt, planRetention } from './retention.js';
import { clipBytes, openStore, tempDir } from './test-helpers.js';

const MiB = 1024 * 1024;

describe('planRetention', () => {
  const itemsArb = fc
    .uniqueArray(
      fc.record({
        t: fc.integer({ min: 0, max: 10_000_000 }),
        r: fc.integer({ min: 0, max: 0xffffff }),
        bucket: fc.integer({ min: 0, max: 10_000_000 }),
        bytes: fc.integer({ min: 0, max: 5_000 }),
      }),
      { maxLength: 60, selector: (x) => `${x.t}-${x.r}` },
    )
    .map((xs) =>
      xs.map((x) => ({
        id: `${x.t.toString().padStart(13, '0')}-${x.r.toString(16).padStart(12, '0')}`,
        bytes: x.bytes,
        storedBucketMs: x.bucket,
      })),
    )
    .chain((items) => fc.tuple(fc.constant(items), fc.shuffledSubarray(items, { minLength: items.length })));

  it('property: what remains fits, nothing too old remains, and the evicted are exactly the oldest', () => {
    fc.assert(
      fc.property(
        itemsArb,
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 12_000_000 }),
        fc.integer({ min: 1, max: 2_000_000 }),
        fc.integer({ min: 0, max: 12_000_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.option(fc.nat(), { nil: undefined }),
        ([items, shuffled], maxTotalBytes, maxAgeMs, bucketMs, nowMs, freeBytes, keepIndex) => {
          const keepItem = keepIndex === undefined ? undefined : items[keepIndex % Math.max(1, items.length)];
          const keep = new Set(keepItem && keepItem.bytes <= maxTotalBytes ? [keepItem.id] : []);
          const plan = planRetention(shuffled, { nowMs, maxAgeMs, bucketMs, maxTotalBytes, freeBytes, keep });
          const tooOld = (i: (typeof items)[number]) =>
            nowMs > expiresAt(i.storedBucketMs, { maxAgeMs, bucketMs });

          const evicted = new Set(plan.evict.map((e) => e.id));
          const remaining = items.filter((i) => !evicted.has(i.id));
          const total = remaining.reduce((n, i) => n + i.bytes, 0);
          assert.equal(plan.remainingBytes, total);
          assert.ok(total <= maxTotalBytes, `total ${total} > ${maxTotalBytes}`);
          for (const id of keep) assert.ok(!evicted.has(id), 'a kept item is never evicted');
          for (const i of remaining) {
            if (!keep.has(i.id)) assert.ok(!tooOld(i), 'nothing too old remains');
          }
          // Oldest first: the evicted ids are listed in order, and every one evicted for size or
          // space is older than every remaining item that could have been evicted.
          const ids = plan.evict.map((e) => e.id);
          assert.deepEqual(ids, [...ids].sort());
          const youngestForRoom = plan.evict.filter((e) => e.why !== 'age').at(-1)?.id;
          if (youngestForRoom !== undefined) {
            for (const i of remaining) if (!keep.has(i.id)) assert.ok(i.id > youngestForRoom);
          }
          // Every item past its expiry goes, whatever its place in the order.
          for (const i of items) if (!keep.has(i.id) && tooOld(i)) assert.ok(evicted.has(i.id));
          // A space request is met when there is enough to evict, and takes at least one item.
          const evictable = items.filter((i) => !keep.has(i.id));
          const freed = plan.evict.reduce((n, e) => n + e.bytes, 0);
          if (freeBytes > 0 && evictable.length > 0) {
            assert.ok(plan.evict.length >= 1);
            const available = evictable.reduce((n, i) => n + i.bytes, 0);
            assert.ok(freed >= Math.min(freeBytes, available));
          }
          // Nothing is evicted without a reason.
          if (freeBytes === 0) {
            const old = items.filter((i) => !keep.has(i.id) && tooOld(i)).length;
            const sizeOnly = plan.evict.filter((e) => e.why === 'size');
            assert.equal(plan.evict.length - sizeOnly.length, old);
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

describe('ClipStore retention', () => {
  it('by size: after each write the oldest go until the total fits maxTotalBytes', async (t) => {
    const dir = tempDir(t);
    let now = 1_800_000_000_000;
    const { store, events } = await openStore(
      t,
      {
        dir,
        recipients: [await identityToRecipient(await generateX25519Identity())],
        maxTotalBytes: MiB,
        maxClipBytes: 512 * 1024,
      },
      { now: () => (now += 1_000) },
    );
    const written = [];
    for (let i = 0; i < 8; i++) {
      written.push(
        await store.writeClip({ reason: 'motion', startMs: i, endMs: i, triggerMs: i }, clipBytes(300_000)),
      );
      assert.ok(store.totalBytes() <= MiB, `after write ${i}: ${store.totalBytes()}`);
    }
    // 300 KB clips in 1 MiB: the three newest remain.
    assert.deepEqual(
      store.list().map((i) => i.id),
      written.slice(-3).map((i) => i.id),
    );
    for (const w of written.slice(0, 5)) assert.equal(existsSync(w.path), false, 'evicted files are deleted');
    for (const w of written.slice(-3)) assert.equal(existsSync(w.path), true);
    const evicted = events.filter((e): e is Extract<StoreEvent, { type: 'evicted' }> => e.type === 'evicted');
    assert.deepEqual(
      evicted.flatMap((e) => e.items.map((i) => [i.id, i.why])),
      written.slice(0, 5).map((w) => [w.id, 'size']),
    );
  });

  it('by age: an item goes once maxAgeS has passed since the end of the period it was stored in, on demand and on the timer', async (t) => {
    const dir = tempDir(t);
    // A minute's retention: the store period is a minute too (never longer than the retention).
    const t0 = 1_800_000_000_000; // a whole minute
    let now = t0 + 5_000;
    const { store, events } = await openStore(
      t,
      {
        dir,
        recipients: [await identityToRecipient(await generateX25519Identity())],
        maxAgeS: 60,
        retentionIntervalS: 1,
      },
      { now: () => now },
    );
    const a = await store.writeSnapshot(clipBytes(1_000), 1); // period [t0, t0 + 60 s)
    now = t0 + 65_000;
    const b = await store.writeSnapshot(clipBytes(1_000), 2); // period [t0 + 60 s, t0 + 120 s)
    now = t0 + 120_000; // a's period ended 60 s ago: not yet past it
    assert.deepEqual(await store.runRetention(), []);
    now = t0 + 120_001;
    assert.deepEqual(
      (await store.runRetention()).map((e) => [e.id, e.why]),
      [[a.id, 'age']],
    );
    assert.equal(existsSync(a.path), false);
    now = t0 + 180_001; // b is past its expiry: the 1 s timer removes it without being asked
    // Polled: the retention timer is unref'd, so a bare wait for its event would let the loop end.
    await waitFor(
      () => events.filter((e) => e.type === 'evicted').length >= 2,
      'the timer eviction',
      5000,
      50,
    );
    assert.deepEqual(store.list(), []);
    assert.equal(existsSync(b.path), false);
    assert.deepEqual(events.filter((e) => e.type === 'evicted').length, 2);
  });
});
