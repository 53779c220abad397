import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { RewrapError, rewrapFile, splitHeader } from './rewrap.js';

const run = promisify(execFile);
let dir: string;
const ids: Record<string, { identity: string; recipient: string; file: string }> = {};

async function keygen(name: string) {
  const file = join(dir, `${name}.txt`);
  await run('age-keygen', ['-o', file]);
  const identity =
    (await readFile(file, 'utf8')).split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-')) ?? '';
  const recipient = (await run('age-keygen', ['-y', file])).stdout.trim();
  ids[name] = { identity, recipient, file };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rewrap-'));
  for (const n of ['owner', 'second-owner', 'requester', 'stranger']) await keygen(n);
});
after(() => rm(dir, { recursive: true, force: true }));

describe('rewrapping an age file for a requester (header only, payload untouched)', () => {
  test('the requester decrypts it with the stock age command, a third key cannot, and the payload bytes are identical', async () => {
    const plain = join(dir, 'clip.bin');
    await writeFile(plain, randomBytes(300_000)); // several 64 KiB STREAM chunks
    const original = join(dir, 'clip.age');
    // Encrypted by the stock age command to two owners, as a doorbell with two recipients would.
    await run('age', [
      '-r',
      ids.owner?.recipient ?? '',
      '-r',
      ids['second-owner']?.recipient ?? '',
      '-o',
      original,
      plain,
    ]);
    const shared = join(dir, 'shared.age');
    await rewrapFile(original, shared, [ids.owner?.identity ?? ''], [ids.requester?.recipient ?? '']);

    const opened = await run('age', ['-d', '-i', ids.requester?.file ?? '', shared], {
      encoding: 'buffer',
      maxBuffer: 1 << 24,
    });
    assert.deepEqual(opened.stdout, await readFile(plain), 'the requester reads the clip');
    await assert.rejects(
      run('age', ['-d', '-i', ids.stranger?.file ?? '', shared], { encoding: 'buffer', maxBuffer: 1 << 24 }),
      /no identity matched/,
    );
    await assert.rejects(
      run('age', ['-d', '-i', ids['second-owner']?.file ?? '', shared], {
        encoding: 'buffer',
        maxBuffer: 1 << 24,
      }),
      /no identity matched/,
      "the owners' stanzas are not carried over",
    );
    const a = await readFile(original);
    const b = await readFile(shared);
    const pa = a.subarray(splitHeader(a).payloadOffset);
    const pb = b.subarray(splitHeader(b).payloadOffset);
    assert.ok(pa.equals(pb), 'the payload is byte for byte the same');
  });

  test('an identity that is not a recipient, a bad requester key and a file that is not age are refused, leaving no file', async () => {
    const original = join(dir, 'small.age');
    await run('age', ['-r', ids.owner?.recipient ?? '', '-o', original, join(dir, 'owner.txt')]);
    const out = join(dir, 'refused.age');
    const refused = async (p: Promise<unknown>, kind: string) => {
      await assert.rejects(p, (e: unknown) => e instanceof RewrapError && e.kind === kind);
      await assert.rejects(stat(out), /ENOENT/);
      await assert.rejects(stat(`${out}.part`), /ENOENT/);
    };
    await refused(
      rewrapFile(original, out, [ids.stranger?.identity ?? ''], [ids.requester?.recipient ?? '']),
      'no-identity',
    );
    await refused(
      rewrapFile(original, out, [ids.owner?.identity ?? ''], [ids.requester?.identity ?? '']),
      'bad-recipient',
    );
    await refused(
      rewrapFile(join(dir, 'owner.txt'), out, [ids.owner?.identity ?? ''], [ids.requester?.recipient ?? '']),
      'not-age',
    );
  });
});
