import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../common/logger.js';
import type { StoredItem } from '../../media/store/clip-store.js';
import { doorbell, generateSigningKey, MAX_ENVELOPE_BYTES, sealEvent } from '../../proto/index.js';
import { MAX_SEALED_META_BYTES } from '../../proto/item-meta.js';
import {
  AUDIT_INTERVAL_MS,
  CHUNKS_IN_FLIGHT,
  DEFAULT_MAX_WINDOWS,
  DEFAULT_WINDOW_BYTES,
  FootageService,
  type FootageStore,
  ITEM_CHUNK_BYTES,
  MAX_PAGE_ITEMS,
  MAX_WINDOW_BYTES,
} from './footage-service.js';

const { ErrorKind } = doorbell.v1;
const dir = mkdtempSync(join(tmpdir(), 'footage-service-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function item(n: number, over: Partial<StoredItem> = {}): StoredItem {
  const id = `${String(n).padStart(13, '0')}-${n.toString(16).padStart(12, '0')}`;
  return {
    id,
    storedBucketMs: 1_749_945_600_000,
    bytes: 0,
    sha256: 'ab'.repeat(32),
    path: join(dir, `${id}.age`),
    metaPath: join(dir, `${id}.meta.age`),
    expiresMs: 1_749_945_600_000 + 15 * 86_400_000,
    ...over,
  };
}

/** A store over `items`; each item's sealed metadata is `metaBytes(item)` bytes of stand-in ciphertext. */
function storeOf(items: StoredItem[], metaBytes: (i: StoredItem) => number = () => 400): FootageStore {
  return {
    list: () => [...items],
    get: (id) => items.find((i) => i.id === id),
    readMeta: async (i) => (i.metaPath === undefined ? undefined : new Uint8Array(metaBytes(i)).fill(7)),
    delete: async (ids) => {
      const gone = items.filter((i) => ids.includes(i.id)).map((i) => i.id);
      for (const id of gone)
        items.splice(
          items.findIndex((i) => i.id === id),
          1,
        );
      return gone;
    },
  };
}

function service(items: StoredItem[], sendChunk = async (_c: doorbell.v1.IItemChunk, _cid: string) => {}) {
  return new FootageService({ store: () => storeOf(items), sendChunk, logger: silentLogger() });
}

/** The answer sealed as the device would: every page must fit the 16 KiB envelope. */
function sealedBytes(result: doorbell.v1.ICommandResult): number {
  return sealEvent(
    {
      header: {
        deviceId: 'front-door',
        topic: 'doorbell/v1/front-door/evt',
        counter: 1,
        issuedAtMs: 1,
        expiresAtMs: 2,
        correlationId: '0123456789abcdef0123456789abcdef',
      },
      commandResult: result,
    },
    generateSigningKey(),
  ).length;
}

describe('FootageService: ListItems', () => {
  test('paging through any store lists each item once, in id order, with its sealed metadata, each page within the envelope cap', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: MAX_SEALED_META_BYTES }), { minLength: 0, maxLength: 150 }),
        fc.integer({ min: 0, max: MAX_PAGE_ITEMS }),
        fc.integer({ min: 0, max: 160 }),
        async (metaSizes, limit, afterN) => {
          const items = metaSizes.map((m, n) => item(n, m === 0 ? { metaPath: undefined } : {}));
          const sizes = new Map(items.map((i, n) => [i.id, metaSizes[n] ?? 0]));
          const s = new FootageService({
            store: () => storeOf(items, (i) => sizes.get(i.id) ?? 0),
            sendChunk: async () => {},
            logger: silentLogger(),
          });
          const start = afterN === 0 ? '' : item(afterN - 1).id;
          const expected = items.map((i) => i.id).filter((id) => id > start);
          const seen: string[] = [];
          let afterId = start;
          for (let page = 0; page < 1000; page++) {
            const r = await s.list({ afterId, limit });
            assert.equal(r.ok, true, r.errorMessage ?? '');
            assert.ok(sealedBytes(r) <= MAX_ENVELOPE_BYTES, `page of ${r.items?.items?.length} items seals`);
            const listed = r.items?.items ?? [];
            assert.ok(listed.length <= (limit || MAX_PAGE_ITEMS));
            for (const l of listed) {
              assert.equal(l.meta?.length ?? 0, sizes.get(l.id ?? ''), 'its sealed metadata, whole');
              assert.equal(Number(l.expiresMs), 1_749_945_600_000 + 15 * 86_400_000);
            }
            seen.push(...listed.map((i) => i.id ?? ''));
            afterId = r.items?.nextAfterId ?? '';
            if (afterId === '') break;
            assert.ok(listed.length > 0, 'a page that promises more holds at least one item');
          }
          assert.deepEqual(seen, expected);
        },
      ),
      // The largest pages: every item with the largest sealed metadata a hub accepts.
      { numRuns: 150, examples: [[Array(150).fill(MAX_SEALED_META_BYTES), 0, 0]] },
    );
  });

  test('bad arguments are INVALID_ARGUMENT; while the store opens the footage commands are BUSY, without a camera UNSUPPORTED_COMMAND', async () => {
    const s = service([item(1)]);
    for (const bad of [{ limit: MAX_PAGE_ITEMS + 1 }, { afterId: 'x' }, { afterId: '1750000000000' }]) {
      assert.equal((await s.list(bad)).errorKind, ErrorKind.INVALID_ARGUMENT, JSON.stringify(bad));
    }
    const none = new FootageService({
      store: () => undefined,
      sendChunk: async () => {},
      logger: silentLogger(),
    });
    assert.equal((await none.list({})).errorKind, ErrorKind.UNSUPPORTED_COMMAND);
    assert.equal(
      (await none.fetch({ itemId: item(1).id }, 'c', 'k')).errorKind,
      ErrorKind.UNSUPPORTED_COMMAND,
    );
  });
});

describe('FootageService: FetchItem', () => {
  test('a window is sent as chunks of at most ITEM_CHUNK_BYTES (240 KiB) covering exactly [offset, end), in order, bound to the request', async () => {
    const file = randomBytes(1_000_000);
    const it = item(7, { bytes: file.length });
    writeFileSync(it.path, file);
    const sent: { chunk: doorbell.v1.IItemChunk; cid: string }[] = [];
    let done: () => void = () => {};
    const finished = new Promise<void>((r) => {
      done = r;
    });
    const s = service([it], async (chunk, cid) => {
      // A copy, as sealing makes one: the data is reused once the call returns.
      sent.push({ chunk: { ...chunk, data: Buffer.from(chunk.data ?? []) }, cid });
      if (Number(chunk.offset) + (chunk.data?.length ?? 0) === 705_000) done();
    });
    const r = await s.fetch({ itemId: it.id, offset: 5_000, maxBytes: 700_000 }, 'the-request', 'key-1');
    assert.equal(r.ok, true);
    assert.equal(Number(r.window?.offset), 5_000);
    assert.equal(Number(r.window?.end), 705_000);
    assert.equal(r.window?.item?.id, it.id);
    await finished;
    let at = 5_000;
    for (const { chunk, cid } of sent) {
      assert.equal(cid, 'the-request');
      assert.equal(chunk.itemId, it.id);
      assert.equal(Number(chunk.offset), at);
      assert.ok((chunk.data?.length ?? 0) <= ITEM_CHUNK_BYTES);
      assert.deepEqual(Buffer.from(chunk.data ?? []), file.subarray(at, at + (chunk.data?.length ?? 0)));
      at += chunk.data?.length ?? 0;
    }
    assert.equal(at, 705_000);
    assert.equal(sent.length, Math.ceil(700_000 / ITEM_CHUNK_BYTES));
    await s.stop();
  });

  test('unknown items, offsets past the end, oversized windows and malformed ids are refused with typed errors', async () => {
    const it = item(8, { bytes: 10 });
    writeFileSync(it.path, Buffer.alloc(10));
    const s = service([it]);
    const ask = (f: doorbell.v1.IFetchItem) => s.fetch(f, 'c', 'k');
    assert.equal((await ask({ itemId: item(99).id })).errorKind, ErrorKind.NOT_FOUND);
    assert.equal((await ask({ itemId: it.id, offset: 11 })).errorKind, ErrorKind.INVALID_ARGUMENT);
    assert.equal(
      (await ask({ itemId: it.id, maxBytes: MAX_WINDOW_BYTES + 1 })).errorKind,
      ErrorKind.INVALID_ARGUMENT,
    );
    assert.equal((await ask({ itemId: '../../etc/passwd' })).errorKind, ErrorKind.INVALID_ARGUMENT);
    const gone = item(9, { bytes: 10, path: join(dir, 'never-written.age') });
    assert.equal((await service([gone]).fetch({ itemId: gone.id }, 'c', 'k')).errorKind, ErrorKind.NOT_FOUND);
  });

  test('a broker that never acknowledges holds CHUNKS_IN_FLIGHT (2) chunks per window, at most two windows; the next fetch is BUSY; stop() ends them', async () => {
    // A default window (1 MiB) holds more chunks than may be in flight.
    const it = item(10, { bytes: 2_000_000 });
    writeFileSync(it.path, randomBytes(2_000_000));
    assert.ok(DEFAULT_WINDOW_BYTES > CHUNKS_IN_FLIGHT * ITEM_CHUNK_BYTES);
    let pending = 0;
    let twoPending: () => void = () => {};
    const both = new Promise<void>((r) => {
      twoPending = r;
    });
    const s = service([it], () => {
      pending += 1;
      if (pending === DEFAULT_MAX_WINDOWS * CHUNKS_IN_FLIGHT) twoPending();
      return new Promise<void>(() => {}); // the broker never acknowledges
    });
    for (let i = 0; i < DEFAULT_MAX_WINDOWS; i++) {
      assert.equal((await s.fetch({ itemId: it.id }, `c${i}`, 'k')).ok, true);
    }
    await both;
    assert.equal((await s.fetch({ itemId: it.id }, 'c3', 'k')).errorKind, ErrorKind.BUSY);
    assert.equal(
      pending,
      DEFAULT_MAX_WINDOWS * CHUNKS_IN_FLIGHT,
      'a few chunks in flight per window, nothing read beyond them',
    );
    await s.stop();
    assert.equal((await s.fetch({ itemId: it.id }, 'c4', 'k')).ok, true, 'the windows are free again');
    await s.stop();
  });
});

test('each chunk waits while a ring-path event waits to be sent, and goes once the outbox is empty', async () => {
  const file = randomBytes(3 * ITEM_CHUNK_BYTES);
  const it = item(12, { bytes: file.length });
  writeFileSync(it.path, file);
  let eventPending = true;
  let emptied: () => void = () => {};
  const sent: number[] = [];
  /** How many chunks had been sent each time the service asked whether the ring path is idle. */
  const asked: number[] = [];
  const waiters: { n: number; list: unknown[]; resolve: () => void }[] = [];
  const reaches = (list: unknown[], n: number) =>
    new Promise<void>((resolve) => (list.length >= n ? resolve() : waiters.push({ n, list, resolve })));
  const wake = () => {
    for (const w of waiters.filter((w) => w.list.length >= w.n)) w.resolve();
  };
  const s = new FootageService({
    store: () => storeOf([it]),
    sendChunk: async (chunk) => {
      sent.push(Number(chunk.offset));
      // A press arrives while the first chunk travels: its event is queued in the outbox.
      if (sent.length === 1) eventPending = true;
      wake();
    },
    ringPathIdle: () => {
      asked.push(sent.length);
      wake();
      return eventPending
        ? new Promise<void>((resolve) => {
            emptied = () => {
              eventPending = false;
              resolve();
            };
          })
        : Promise.resolve();
    },
    logger: silentLogger(),
  });
  assert.equal((await s.fetch({ itemId: it.id, maxBytes: file.length }, 'c', 'k')).ok, true);
  // An event was waiting when the window started: the service asks and waits, having sent nothing.
  await reaches(asked, 1);
  assert.deepEqual(sent, []);
  emptied();
  // The press during the first chunk: the second chunk waits for its event.
  await reaches(asked, 2);
  assert.deepEqual(sent, [0]);
  emptied();
  await reaches(sent, 3);
  assert.deepEqual(sent, [0, ITEM_CHUNK_BYTES, 2 * ITEM_CHUNK_BYTES]);
  assert.deepEqual(asked, [0, 1, 2], 'asked before every chunk');
  await s.stop();
});

describe('FootageService: the audit log', () => {
  test('a key that lists and fetches without pause adds at most one entry a minute; the reads in between are counted in the next', async () => {
    const it = item(11, { bytes: 10 });
    writeFileSync(it.path, Buffer.alloc(10));
    const entries: { event: string; data: Record<string, unknown> }[] = [];
    let now = 1_000_000;
    const s = new FootageService({
      store: () => storeOf([it]),
      sendChunk: async () => {},
      logger: silentLogger(),
      audit: (event, data) => entries.push({ event, data }),
      nowMs: () => now,
    });
    for (let i = 0; i < 1000; i++) {
      await s.list({}, 'viewer');
      await s.fetch({ itemId: it.id }, `c${i}`, 'viewer');
      await s.stop();
      now += 50; // 2000 reads in 50 s
    }
    assert.equal(entries.length, 1, 'one entry for the first minute');
    assert.equal(entries[0]?.data.by, 'viewer');
    now += AUDIT_INTERVAL_MS;
    await s.list({}, 'viewer');
    assert.equal(entries.length, 2);
    assert.equal(entries[1]?.data.readsBefore, 1999, 'the reads in between are counted');
    await s.list({}, 'another-key');
    assert.equal(entries.length, 3, 'each key has its own minute');
  });
});

describe('FootageService: DeleteItems', () => {
  test('deletes what is stored, names what was not, stops windows of deleted items, and logs each deletion', async () => {
    const a = item(20, { bytes: 200_000 });
    const b = item(21, { bytes: 10 });
    writeFileSync(a.path, randomBytes(200_000));
    writeFileSync(b.path, Buffer.alloc(10));
    const entries: Record<string, unknown>[] = [];
    let sent = 0;
    const store = storeOf([a, b]);
    const s = new FootageService({
      store: () => store,
      sendChunk: () => {
        sent += 1;
        return new Promise<void>(() => {}); // never acknowledged: the window stays open
      },
      logger: silentLogger(),
      audit: (event, data) => entries.push({ event, ...data }),
    });
    assert.equal((await s.fetch({ itemId: a.id }, 'c', 'viewer')).ok, true);
    const r = await s.delete({ itemIds: [a.id, item(99).id] }, 'owner');
    assert.deepEqual(r.deleted?.itemIds, [a.id]);
    assert.deepEqual(r.deleted?.notFound, [item(99).id]);
    assert.equal((await s.fetch({ itemId: a.id }, 'c2', 'viewer')).errorKind, ErrorKind.NOT_FOUND);
    assert.ok(sent <= CHUNKS_IN_FLIGHT, 'the window stopped');
    assert.deepEqual(
      entries.filter((e) => e.event === 'item.deleted'),
      [{ event: 'item.deleted', id: a.id, by: 'owner' }],
    );
    for (const bad of [{ itemIds: [] }, { itemIds: ['x'] }, { itemIds: Array(101).fill(b.id) }]) {
      assert.equal((await s.delete(bad, 'owner')).errorKind, ErrorKind.INVALID_ARGUMENT);
    }
    await s.stop();
  });
});
