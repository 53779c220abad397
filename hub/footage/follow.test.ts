import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { FileFollower } from './follow.js';

test('a follower reads every byte appended, in order, whatever the sizes and the reader pace, and ends at end()', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'follow-'));
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 100_000 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 70_000 }),
        async (sizes, readBytes) => {
          const path = join(dir, 'partial');
          await writeFile(path, '');
          const follower = new FileFollower(path, readBytes);
          const read = (async () => {
            const parts: Buffer[] = [];
            for await (const c of follower) parts.push(Buffer.from(c));
            return Buffer.concat(parts);
          })();
          const written: Buffer[] = [];
          for (const n of sizes) {
            const b = randomBytes(n);
            written.push(b);
            await appendFile(path, b);
            follower.grown();
          }
          follower.end();
          assert.deepEqual(await read, Buffer.concat(written));
        },
      ),
      { numRuns: 60 },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('fail() ends the reading with its error even with bytes left unread', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'follow-'));
  try {
    const path = join(dir, 'partial');
    await writeFile(path, randomBytes(10_000));
    const follower = new FileFollower(path, 1000);
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of follower) {
          seen.push(c.length);
          follower.fail(new Error('hash mismatch'));
        }
      })(),
      /hash mismatch/,
    );
    assert.deepEqual(seen, [1000]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
