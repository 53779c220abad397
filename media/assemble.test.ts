import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { assembleClip } from './assemble.js';

async function drain(it: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of it) n += c.byteLength;
  return n;
}

describe('assembleClip failure paths', { timeout: 30_000 }, () => {
  const dir = mkdtempSync('/dev/shm/media-asm-');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('fails at once when the segments hold no bytes (tsdemux would wait forever)', async () => {
    const empty = path.join(dir, 'r1-00000.ts');
    writeFileSync(empty, '');
    const t0 = Date.now();
    await assert.rejects(drain(assembleClip([empty, path.join(dir, 'r1-00001.ts')], dir)), /no video data/);
    assert.ok(Date.now() - t0 < 1000);
  });

  it('kills a remux that never finishes and reports the timeout; leaves no scratch file', async () => {
    const junk = path.join(dir, 'r1-00002.ts');
    writeFileSync(junk, Buffer.alloc(50_000, 0x47)); // not a transport stream
    const t0 = Date.now();
    await assert.rejects(drain(assembleClip([junk], dir, { timeoutMs: 1500 })), /timed out|remux failed/);
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(
      (await import('node:fs')).readdirSync(dir).filter((n) => n.startsWith('.faststart')),
      [],
    );
  });

  it('reports a missing gst-launch-1.0', async () => {
    const junk = path.join(dir, 'r1-00002.ts');
    await assert.rejects(
      drain(assembleClip([junk], dir, { gstLaunch: '/nonexistent/gst-launch' })),
      /ENOENT/,
    );
  });
});
