import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { sha256File } from '../../common/hash-file.js';
import { serializeItemMeta } from '../../proto/item-meta.js';
import { DecryptError, decryptFile, openItemMeta, readIdentityFile } from './decrypt.js';

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

test("an item's sealed metadata opens with an owner's identity only, and only as that item's", async () => {
  const owner = await generateX25519Identity();
  const stranger = await generateX25519Identity();
  const a = { id: '0000000000001-aaaaaaaaaaaa', sha256: '11'.repeat(32) };
  const b = { id: '0000000000002-bbbbbbbbbbbb', sha256: '22'.repeat(32) };
  const seal = async (item: typeof a) => {
    const e = new Encrypter();
    e.addRecipient(await identityToRecipient(owner));
    return e.encrypt(
      serializeItemMeta({
        v: 1,
        ...item,
        kind: 'clip',
        reason: 'press',
        reasons: ['press'],
        startMs: 10,
        endMs: 20,
        triggerMs: 15,
        truncated: false,
        recipients: [],
      }),
    );
  };
  const metaA = await seal(a);
  assert.equal((await openItemMeta({ ...a, meta: metaA }, [owner])).reason, 'press');
  await assert.rejects(
    openItemMeta({ ...a, meta: metaA }, [stranger]),
    (e: unknown) => e instanceof DecryptError && e.kind === 'no-identity',
  );
  // A's record listed under B (metadata moved between items on the card) is refused.
  await assert.rejects(
    openItemMeta({ ...b, meta: metaA }, [owner]),
    (e: unknown) => e instanceof DecryptError && e.kind === 'damaged' && /names item/.test(e.message),
  );
  const flipped = metaA.slice();
  flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 1;
  await assert.rejects(
    openItemMeta({ ...a, meta: flipped }, [owner]),
    (e: unknown) => e instanceof DecryptError && e.kind === 'damaged',
  );
  await assert.rejects(
    openItemMeta({ ...a, meta: undefined }, [owner]),
    (e: unknown) => e instanceof DecryptError && /no metadata/.test(e.message),
  );
});
