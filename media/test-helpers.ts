/**
 * TEST ONLY. Never import from product code: this sink writes plaintext clips to
 * a directory, which the product must never do (the store encrypts).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ClipMeta, ClipSink, ClipWriteResult } from './clip-sink.js';

export const execFileP = promisify(execFile);

export class PlainDirSink implements ClipSink {
  readonly written: { meta: ClipMeta; path: string; result: ClipWriteResult }[] = [];
  constructor(private readonly dir: string) {}

  async writeClip(
    meta: ClipMeta,
    plaintext: AsyncIterable<Uint8Array> | Uint8Array,
  ): Promise<ClipWriteResult> {
    const chunks: Uint8Array[] = [];
    if (plaintext instanceof Uint8Array) chunks.push(plaintext);
    else for await (const c of plaintext) chunks.push(c);
    const buf = Buffer.concat(chunks);
    const file = path.join(this.dir, `${meta.id}.mp4`);
    await writeFile(file, buf);
    const result = { id: meta.id, bytes: buf.length, sha256: createHash('sha256').update(buf).digest('hex') };
    this.written.push({ meta, path: file, result });
    return result;
  }
}

/** Duration in seconds according to ffprobe. */
export async function ffprobeDuration(file: string): Promise<number> {
  const { stdout } = await execFileP('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'format=duration',
    '-of',
    'default=noprint_wrappers=1:nokey=1',
    file,
  ]);
  return Number(stdout.trim());
}

/** gst-discoverer-1.0's duration in seconds (throws if it cannot read the file). */
export async function discovererDuration(file: string): Promise<number> {
  const { stdout } = await execFileP('gst-discoverer-1.0', [file], { timeout: 20_000 });
  const m = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(stdout);
  if (m === null || !/H\.264/.test(stdout))
    throw new Error(`gst-discoverer-1.0 could not read ${file}: ${stdout}`);
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
}
