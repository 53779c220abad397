import {
  closeSync,
  fchmodSync,
  constants as fsConstants,
  fsyncSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** An open file being written. */
export interface WritableFile {
  /** Writes all of `data` at the current end. */
  write(data: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The filesystem operations a durable write uses. Production uses
 * `nodeDurableFs`; tests wrap it to inject failures (ENOSPC at any step)
 * without mocking anything else.
 */
export interface DurableFs {
  /** Creates a new file (fails if it exists) with `mode`, whatever the umask. */
  create(path: string, mode: number): Promise<WritableFile>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync on a directory, so a rename in it is durable. */
  syncDir(path: string): Promise<void>;
}

export const nodeDurableFs: DurableFs = {
  async create(path, mode) {
    const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
    try {
      await fh.chmod(mode);
    } catch (err) {
      await fh.close();
      throw err;
    }
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
  syncDir: (path) => syncDirectory(path),
};

/**
 * The first step of a durable write: creates `tmp` with `mode`, lets `fill`
 * write it, fsyncs and closes it. On any failure the file is closed and
 * deleted and the error thrown: no partial temporary file stays behind.
 */
export async function writeTemporary(
  fs: DurableFs,
  tmp: string,
  mode: number,
  fill: (file: WritableFile) => Promise<void>,
): Promise<void> {
  let file: WritableFile | undefined;
  try {
    file = await fs.create(tmp, mode);
    await fill(file);
    await file.sync();
    const f = file;
    file = undefined;
    await f.close();
  } catch (err) {
    await file?.close().catch(() => undefined);
    // A temporary file that cannot be deleted now is a leftover its owner removes at start.
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * The second step: renames the complete temporary file over `path` and fsyncs
 * the directory. A failed rename leaves the temporary file to its caller
 * (which may free space and try again, or delete it).
 */
export async function commitTemporary(fs: DurableFs, tmp: string, path: string): Promise<void> {
  await fs.rename(tmp, path);
  await fs.syncDir(dirname(path));
}

export interface DurableWriteOptions {
  fs?: DurableFs;
  /**
   * The temporary file's name; default `<path>.tmp-<pid>`. A fixed name lets
   * a board's start-up find and remove what a power cut left.
   */
  tmpPath?: string;
  /** Called before each step ('write temporary', 'fsync temporary', 'rename', 'fsync directory'): power-cut tests stop there. */
  onStep?: (step: string) => void;
}

/**
 * Replaces `path` with `data` so that a crash or power cut at any point leaves
 * either the old or the new content, never a mix: write a temporary file with
 * `mode`, fsync it, rename it over `path`, fsync the directory.
 */
export async function writeFileDurably(
  path: string,
  data: string | Uint8Array,
  mode: number,
  options: DurableWriteOptions = {},
): Promise<void> {
  const base = options.fs ?? nodeDurableFs;
  const onStep = options.onStep;
  const fs: DurableFs = onStep
    ? {
        ...base,
        create: async (p, m) => {
          onStep('write temporary');
          const file = await base.create(p, m);
          return {
            ...file,
            sync: () => {
              onStep('fsync temporary');
              return file.sync();
            },
          };
        },
        rename: (a, b) => {
          onStep('rename');
          return base.rename(a, b);
        },
        syncDir: (d) => {
          onStep('fsync directory');
          return base.syncDir(d);
        },
      }
    : base;
  const tmp = options.tmpPath ?? `${path}.tmp-${process.pid}`;
  await fs.unlink(tmp).catch(() => undefined); // left by a crash of an earlier process
  await writeTemporary(fs, tmp, mode, (file) =>
    file.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data),
  );
  try {
    await commitTemporary(fs, tmp, path);
  } catch (err) {
    await fs.unlink(tmp).catch(() => undefined); // gone already when only the directory sync failed
    throw err;
  }
}

/** Makes a rename in `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The same as writeFileDurably, blocking: for rare writes that must land before the caller goes on. */
export function writeFileDurablySync(
  path: string,
  data: string | Uint8Array,
  mode: number,
  options: Pick<DurableWriteOptions, 'tmpPath'> = {},
): void {
  const tmp = options.tmpPath ?? `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC, mode);
  try {
    fchmodSync(fd, mode);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // the write failed already; a leftover temporary file is harmless
    }
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing more to undo
    }
    throw err;
  }
  const dirFd = openSync(dirname(path), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
