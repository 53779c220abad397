import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';

/** An open file being written. */
export interface StoreFile {
  /** Writes all of `data` at the current end. */
  write(data: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The few filesystem operations the store uses. Production uses `nodeStoreFs`; tests wrap it to
 * inject failures (ENOSPC at any write) without mocking anything else.
 */
export interface StoreFs {
  mkdir(path: string): Promise<void>;
  /** Creates a new file (fails if it exists), mode 0600. */
  create(path: string): Promise<StoreFile>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync on a directory, so a rename in it is durable. */
  syncDir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  size(path: string): Promise<number>;
  /** Reads at most `maxBytes + 1` bytes, so a caller can tell "too large" without reading it all. */
  readCapped(path: string, maxBytes: number): Promise<Uint8Array>;
  read(path: string): AsyncIterable<Uint8Array>;
}

export const nodeStoreFs: StoreFs = {
  async mkdir(path) {
    await mkdir(path, { recursive: true, mode: 0o700 });
  },
  async create(path) {
    const fh = await open(path, 'wx', 0o600);
    return {
      async write(data) {
        let off = 0;
        while (off < data.length) {
          const { bytesWritten } = await fh.write(data, off, data.length - off);
          off += bytesWritten;
        }
      },
      sync: () => fh.sync(),
      close: () => fh.close(),
    };
  },
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  async syncDir(path) {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
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
};

/** Whether an error means the filesystem is out of space or quota. */
export function isFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
