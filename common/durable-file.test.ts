import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type DurableFs, nodeDurableFs, writeFileDurably } from './durable-file.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'durable-file-'));
});
after(() => rm(dir, { recursive: true, force: true }));

type Step = 'create' | 'write' | 'sync' | 'close' | 'rename' | 'syncDir';

/** nodeDurableFs failing with ENOSPC at `step`. */
function failingAt(step: Step): DurableFs {
  const fail = (s: Step): void => {
    if (s === step) throw Object.assign(new Error(`injected ENOSPC at ${s}`), { code: 'ENOSPC' });
  };
  return {
    async create(path, mode) {
      fail('create');
      const f = await nodeDurableFs.create(path, mode);
      return {
        write: async (d) => {
          fail('write');
          await f.write(d);
        },
        sync: async () => {
          fail('sync');
          await f.sync();
        },
        close: async () => {
          await f.close();
          fail('close');
        },
      };
    },
    rename: async (a, b) => {
      fail('rename');
      await nodeDurableFs.rename(a, b);
    },
    unlink: (p) => nodeDurableFs.unlink(p),
    syncDir: async (p) => {
      fail('syncDir');
      await nodeDurableFs.syncDir(p);
    },
  };
}

test('a failure at any step before the rename leaves the old content and no temporary file', async () => {
  for (const step of ['create', 'write', 'sync', 'close', 'rename'] as const) {
    const path = join(dir, `file-${step}`);
    await writeFileDurably(path, 'old', 0o600);
    await assert.rejects(writeFileDurably(path, 'new', 0o600, { fs: failingAt(step) }), /injected ENOSPC/);
    assert.equal(await readFile(path, 'utf8'), 'old', `after a failure at ${step}`);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith(`file-${step}.tmp`)),
      [],
      `no temporary file after a failure at ${step}`,
    );
  }
});

test('a failed directory sync after the rename reports the error; the new content is in place', async () => {
  const path = join(dir, 'file-syncdir');
  await writeFileDurably(path, 'old', 0o600);
  await assert.rejects(writeFileDurably(path, 'new', 0o600, { fs: failingAt('syncDir') }), /injected ENOSPC/);
  assert.equal(await readFile(path, 'utf8'), 'new');
});

test('the mode is applied whatever the umask, and a stale temporary file of this pid is replaced', async () => {
  const path = join(dir, 'moded');
  await writeFile(`${path}.tmp-${process.pid}`, 'left by a crash');
  const old = process.umask(0o077);
  try {
    await writeFileDurably(path, new Uint8Array([1, 2, 3]), 0o644);
  } finally {
    process.umask(old);
  }
  assert.equal((await stat(path)).mode & 0o777, 0o644);
  assert.deepEqual([...(await readFile(path))], [1, 2, 3]);
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.startsWith('moded.tmp')),
    [],
  );
});
