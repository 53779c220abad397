import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, stat, utimes } from 'node:fs/promises';
import { type DurableFs, nodeDurableFs, type WritableFile } from '../../common/durable-file.js';

/** An open file being written. */
export type StoreFile = WritableFile;

/**
 * The filesystem operations the store uses: those of a durable write
 * (common/durable-file.ts) and a few reads. Production uses `nodeStoreFs`;
 * tests wrap it to inject failures (ENOSPC at any write) without mocking
 * anything else.
 */
export interface StoreFs extends DurableFs {
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  size(path: string): Promise<number>;
  /** Reads at most `maxBytes + 1` bytes, so a caller can tell "too large" without reading it all. */
  readCapped(path: string, maxBytes: number): Promise<Uint8Array>;
  read(path: string): AsyncIterable<Uint8Array>;
  /** Sets a file's access and modification times (ms), so that `ls -l` shows only the store period. */
  setTimes(path: string, ms: number): Promise<void>;
}

export const nodeStoreFs: StoreFs = {
  ...nodeDurableFs,
  async mkdir(path) {
    await mkdir(path, { recursive: true, mode: 0o700 });
  },
  readdir: (path) => readdir(path),
  size: async (path) => (await stat(path)).size,
  async readCapped(path, maxBytes) {
    const fh = await open(path, 'r');
    try {
      const buf = new Uint8Array(maxBytes + 1);
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await fh.read(buf, off, buf.length - off, null);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return buf.subarray(0, off);
    } finally {
      await fh.close();
    }
  },
  read: (path) => createReadStream(path),
  setTimes: (path, ms) => utimes(path, ms / 1000, ms / 1000),
};

/** Whether an error means the filesystem is out of space or quota. */
export function isFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
