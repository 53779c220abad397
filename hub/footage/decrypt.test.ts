import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { sha256File } from '../../common/hash-file.js';
import { DecryptError, decryptFile, readIdentityFile } from './decrypt.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

test('a 160 MiB clip decrypts with memory flat: resident memory grows by far less than the clip', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'decrypt-flat-'));
  try {
    const plain = join(dir, 'plain.bin');
    const cipher = join(dir, 'clip.age');
    const owner = join(dir, 'owner.txt');
    await run('age-keygen', ['-o', owner]);
    const recipient = (await run('age-keygen', ['-y', owner])).stdout.trim();
    await run('sh', [
      '-c',
      `head -c ${160 * MiB} /dev/urandom > '${plain}' && age -r ${recipient} -o '${cipher}' '${plain}'`,
    ]);
    const identities = await readIdentityFile(owner);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    try {
      await decryptFile(cipher, join(dir, 'out.bin'), identities);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.ok(peak - before < 64 * MiB, `resident memory grew by ${Math.round((peak - before) / MiB)} MiB`);
    assert.equal((await stat(join(dir, 'out.bin'))).size, 160 * MiB);
    assert.equal(await sha256File(join(dir, 'out.bin')), await sha256File(plain), 'the same bytes');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an identity file that is not one, or names no key, is a typed error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'decrypt-id-'));
  try {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'empty.txt'), '# nothing here\n');
    await writeFile(
      join(dir, 'public.txt'),
      'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n',
    );
    for (const f of ['empty.txt', 'public.txt', 'missing.txt']) {
      await assert.rejects(
        readIdentityFile(join(dir, f)),
        (e: unknown) => e instanceof DecryptError && e.kind === 'identity-file',
      );
    }
    assert.ok((await readFile(join(dir, 'empty.txt'))).length > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
