import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FootageStore, FootageStoreError } from './store.js';

async function put(store: FootageStore, id: string, bytes: number, atMs: number, maxBytes: number) {
  const data = randomBytes(bytes);
  const partial = await store.openPartial('front-door', id);
  partial.append(0, data);
  partial.close();
  const sha256 = createHash('sha256').update(data).digest('hex');
  await store.commit({ deviceId: 'front-door', id, bytes, sha256 }, atMs, { maxBytes });
  return sha256;
}

test("the hub store's retention drops the oldest objects beyond its size and logs each, as deletions are", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hub-store-'));
  try {
    const store = new FootageStore(dir);
    const a = await put(store, '1750000000000-00000000000a', 1000, 1, 2500);
    const b = await put(store, '1750000000000-00000000000b', 1000, 2, 2500);
    const c = await put(store, '1750000000000-00000000000c', 1000, 3, 2500);
    assert.equal(existsSync(store.objectPath(a)), false, 'the oldest went');
    assert.ok(existsSync(store.objectPath(b)) && existsSync(store.objectPath(c)));
    assert.deepEqual(
      (await store.catalog()).map((e) => e.sha256),
      [b, c],
    );
    await store.forget('front-door', ['1750000000000-00000000000b']);
    const log = (await store.log()).map((l) => `${l.event} ${l.id}`);
    assert.deepEqual(log, [
      'item.stored 1750000000000-00000000000a',
      'item.stored 1750000000000-00000000000b',
      'item.stored 1750000000000-00000000000c',
      'item.evicted 1750000000000-00000000000a',
      'item.deleted 1750000000000-00000000000b',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a catalog of the earlier version is read without its plaintext metadata; a damaged or oversized one is a typed 'catalog' error", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hub-store-'));
  try {
    const store = new FootageStore(dir);
    await mkdir(store.root, { recursive: true });
    const entry = {
      deviceId: 'front-door',
      id: '1750000000000-00000000000a',
      bytes: 10,
      sha256: 'ab'.repeat(32),
      storedAtMs: 5,
    };
    const catalogFile = join(store.root, 'catalog.json');
    await writeFile(
      catalogFile,
      JSON.stringify({
        version: 1,
        entries: [{ ...entry, kind: 'clip', reason: 'press', startMs: 1, endMs: 2 }],
      }),
    );
    assert.deepEqual(await store.catalog(), [entry], 'kind, trigger and times are not kept');
    const refused = async (text: string) =>
      assert.rejects(
        store.catalog(),
        (e: unknown) => e instanceof FootageStoreError && e.kind === 'catalog',
        text,
      );
    for (const bad of [
      '{"version":2,"entries":[{"id":"x"}]}',
      JSON.stringify({ version: 2, entries: [{ ...entry, meta: 'A'.repeat(20_000) }] }),
      JSON.stringify({ version: 2, entries: [{ ...entry, kind: 'clip' }] }),
      'not json',
    ]) {
      await writeFile(catalogFile, bad);
      await refused(bad.slice(0, 60));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
