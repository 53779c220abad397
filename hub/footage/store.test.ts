import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FootageStore } from './store.js';

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
