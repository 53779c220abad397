import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { silentLogger } from '../../common/logger.js';
import { ClipStore, StoreError, type StoreEvent } from './clip-store.js';
import { storeConfigSchema } from './config.js';
import { nodeStoreFs, type StoreFs } from './fs.js';
import { ageDecrypt, ageKeygen, clipBytes, openStore, tempDir } from './test-helpers.js';

type Op = 'create' | 'write' | 'sync' | 'close' | 'rename' | 'syncDir';

/**
 * The real filesystem, except that `fail(op, n, path)` may turn the n-th call of an operation
 * (counted from when it was armed) into the error a full disk gives.
 */
function faultyFs(
  code = 'ENOSPC',
): StoreFs & { arm(fail: (op: Op, n: number, path: string) => boolean): void } {
  let fail: (op: Op, n: number, path: string) => boolean = () => false;
  const counts = new Map<Op, number>();
  const check = (op: Op, path: string): void => {
    const n = (counts.get(op) ?? 0) + 1;
    counts.set(op, n);
    if (fail(op, n, path))
      throw Object.assign(new Error(`${code}: no space left on device, ${op} '${path}'`), { code });
  };
  return {
    ...nodeStoreFs,
    arm(f) {
      fail = f;
      counts.clear();
    },
    async create(path, mode) {
      check('create', path);
      const f = await nodeStoreFs.create(path, mode);
      return {
        async write(data) {
          check('write', path);
          await f.write(data);
        },
        async sync() {
          check('sync', path);
          await f.sync();
        },
        async close() {
          await f.close(); // the descriptor is always released, then the error (as close(2) does)
          check('close', path);
        },
      };
    },
    async rename(from, to) {
      check('rename', from);
      await nodeStoreFs.rename(from, to);
    },
    async syncDir(path) {
      check('syncDir', path);
      await nodeStoreFs.syncDir(path);
    },
  };
}

const meta = (i: number) => ({
  reason: 'press',
  startMs: i * 1000,
  endMs: i * 1000 + 500,
  triggerMs: i * 1000 + 100,
});

async function fill(t: TestContext, code = 'ENOSPC') {
  const dir = tempDir(t, 'clip-enospc-');
  const owner = ageKeygen(dir, 'owner');
  const fs = faultyFs(code);
  let now = 1_700_000_000_000;
  const storeDir = join(dir, 'store');
  const { store, events } = await openStore(
    t,
    { dir: storeDir, recipients: [owner.recipient] },
    { fs, now: () => now++ },
  );
  const old = [];
  for (let i = 0; i < 4; i++) old.push(await store.writeClip(meta(i), clipBytes(150_000 + i)));
  events.length = 0;
  return { store, events, fs, owner, old, storeDir };
}

const tempFiles = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('.tmp-'));

describe('ClipStore on a full disk (injected ENOSPC/EDQUOT)', () => {
  it('at any write of a clip: deletes the partial file, evicts the oldest, retries once and stores the clip', async (t) => {
    const { store, events, fs, owner, old, storeDir } = await fill(t);
    // A 300 KB clip is 5 ciphertext chunks plus the header: writes 1..6. Fail each in turn, once.
    for (let n = 1; n <= 6; n++) {
      events.length = 0;
      const before = store.list();
      fs.arm((op, k, path) => op === 'write' && k === n && path.includes('.tmp-0'));
      const plaintext = clipBytes(300_000, `MARK-${n}`);
      const item = await store.writeClip(meta(10 + n), plaintext);
      fs.arm(() => false);
      const types = events.map((e) => e.type);
      assert.deepEqual(types, ['storage-full', 'evicted', 'stored'], `write ${n}: ${types.join()}`);
      const full = events[0] as Extract<StoreEvent, { type: 'storage-full' }>;
      assert.equal(full.code, 'ENOSPC');
      assert.equal(full.retrying, true);
      const evicted = events[1] as Extract<StoreEvent, { type: 'evicted' }>;
      // The oldest went first, and only as many as needed to make room for this clip.
      assert.deepEqual(
        evicted.items.map((e) => e.id),
        before.slice(0, evicted.items.length).map((e) => e.id),
      );
      assert.ok(evicted.items.every((e) => e.why === 'space'));
      assert.deepEqual(tempFiles(storeDir), []);
      const r = ageDecrypt(owner.identityFile, item.path);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(Buffer.from(plaintext).equals(r.stdout), `write ${n}: the retried file is complete`);
      assert.equal(readFileSync(item.path).length, item.bytes);
    }
    assert.ok(!store.list().some((i) => i.id === old[0]?.id), 'the oldest clip was evicted');
  });

  it('at sync, close or rename time, and with EDQUOT, the same', async (t) => {
    const { store, events, fs, owner, storeDir } = await fill(t, 'EDQUOT');
    for (const op of ['create', 'sync', 'close', 'rename'] as const) {
      events.length = 0;
      fs.arm((o, k, path) => o === op && k === 1 && path.includes('.tmp-0'));
      const item = await store.writeSnapshot(clipBytes(20_000), 99);
      fs.arm(() => false);
      const types = events.map((e) => e.type);
      assert.deepEqual(types, ['storage-full', 'evicted', 'stored'], `${op}: ${types.join()}`);
      assert.equal(ageDecrypt(owner.identityFile, item.path).status, 0);
      assert.deepEqual(tempFiles(storeDir), []);
    }
  });

  it('when eviction does not help: rejects with a typed storage-full error, leaves no partial file, keeps working', async (t) => {
    const { store, events, fs, storeDir } = await fill(t);
    fs.arm((op, _k, path) => op === 'write' && path.includes('.tmp-0'));
    await assert.rejects(
      store.writeClip(meta(20), clipBytes(200_000)),
      (e: unknown) => e instanceof StoreError && e.kind === 'storage-full',
    );
    assert.deepEqual(
      events.map((e) => e.type),
      ['storage-full', 'evicted', 'storage-full', 'write-failed'],
    );
    assert.deepEqual(
      events.filter((e) => e.type === 'storage-full').map((e) => (e as { retrying: boolean }).retrying),
      [true, false],
    );
    assert.deepEqual(tempFiles(storeDir), []);
    fs.arm(() => false);
    const item = await store.writeClip(meta(21), clipBytes(1_000));
    assert.ok(store.list().some((i) => i.id === item.id));
  });

  it('a full disk while saving the index is logged and retried; the clips are stored', async (t) => {
    const { store, fs, storeDir } = await fill(t);
    fs.arm((op, _k, path) => op === 'write' && path.endsWith('.tmp-index'));
    const item = await store.writeClip(meta(30), clipBytes(1_000));
    assert.deepEqual(tempFiles(storeDir), []);
    const onDisk = JSON.parse(readFileSync(join(storeDir, 'index.json'), 'utf8')) as {
      entries: { id: string }[];
    };
    assert.ok(!onDisk.entries.some((e) => e.id === item.id), 'index not yet saved');
    fs.arm(() => false);
    await store.stop(); // saves the pending index
    const saved = JSON.parse(readFileSync(join(storeDir, 'index.json'), 'utf8')) as {
      entries: { id: string }[];
    };
    assert.ok(saved.entries.some((e) => e.id === item.id));
  });
});

function tryMountTmpfs(dir: string, size: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return (e as { stderr?: Buffer }).stderr?.toString().trim() || String(e);
  }
}

describe('ClipStore on a real full tmpfs', () => {
  it('keeps storing clips on a 1 MiB tmpfs by evicting the oldest on ENOSPC', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'clip-tmpfs-'));
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const refused = tryMountTmpfs(mnt, '1m');
    let store: ClipStore | undefined;
    t.after(async () => {
      await store?.stop();
      if (refused === undefined) execFileSync('umount', [mnt]);
      rmSync(dir, { recursive: true, force: true });
    });
    if (refused !== undefined) {
      t.skip(`mount -t tmpfs is not permitted here: ${refused}`);
      return;
    }
    const owner = ageKeygen(dir, 'owner');
    const id = await identityToRecipient(await generateX25519Identity());
    const config = storeConfigSchema.parse({
      dir: join(mnt, 'clips'),
      recipients: [owner.recipient, id],
      maxTotalBytes: 64 * 1024 * 1024, // larger than the disk: only ENOSPC can make room
      maxClipBytes: 1024 * 1024,
    });
    store = new ClipStore({ config, logger: silentLogger() });
    const events: StoreEvent[] = [];
    store.onEvent((e) => events.push(e));
    await store.start();
    const stored = [];
    for (let i = 0; i < 10; i++) stored.push(await store.writeClip(meta(i), clipBytes(300_000, `CLIP-${i}`)));
    const types = events.map((e) => e.type);
    assert.ok(types.includes('storage-full') && types.includes('evicted'), types.join());
    assert.ok(!types.includes('write-failed'), types.join());
    const last = stored.at(-1);
    assert.ok(last);
    const r = ageDecrypt(owner.identityFile, last.path);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Buffer.from(clipBytes(300_000, 'CLIP-9')).equals(r.stdout));
    assert.deepEqual(tempFiles(join(mnt, 'clips')), []);
    const remaining = store.list();
    assert.ok(remaining.length >= 2 && remaining.length < 10, `${remaining.length} clips remain`);
    assert.deepEqual(
      remaining.map((i) => i.id),
      stored.slice(-remaining.length).map((i) => i.id),
      'the newest survive, the oldest went',
    );
  });
});
