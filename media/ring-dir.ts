import { lstat, mkdir, statfs } from 'node:fs/promises';
import type { Logger } from '../common/logger.js';
import { MediaConfigError } from './pipeline/preflight.js';

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

export interface RingDirOptions {
  /** `media.camera.ringOnPersistentStorage`: accept a ring that is not in RAM (warned). */
  allowPersistent: boolean;
  logger?: Logger;
  /** The daemon's user id (default process.getuid()). */
  uid?: number;
}

/**
 * Makes sure the segment ring's directory holds plaintext video only where
 * nobody else controls it: created here with mode 0700 when missing; an
 * existing one must be a real directory (not a symlink), owned by the
 * daemon's user and closed to everyone else; and it must be RAM (tmpfs or
 * ramfs) unless the config accepts persistent storage. Anything else is a
 * MediaConfigError naming the directory and the fix, and the camera does
 * not start.
 */
export async function prepareRingDir(ringDir: string, o: RingDirOptions): Promise<void> {
  const uid = o.uid ?? process.getuid?.() ?? 0;
  try {
    await mkdir(ringDir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new MediaConfigError(`media ring directory ${ringDir}: its parent does not exist`);
    }
    if (code !== 'EEXIST') throw err;
  }
  const st = await lstat(ringDir);
  if (st.isSymbolicLink()) {
    throw new MediaConfigError(
      `media ring directory ${ringDir} is a symbolic link: plaintext video could be led anywhere; remove it or choose another ringDir`,
    );
  }
  if (!st.isDirectory()) {
    throw new MediaConfigError(`media ring directory ${ringDir} exists and is not a directory`);
  }
  if (st.uid !== uid) {
    throw new MediaConfigError(
      `media ring directory ${ringDir} belongs to uid ${st.uid}, not to this daemon (uid ${uid}): someone else could read the plaintext video; remove it or choose another ringDir`,
    );
  }
  if ((st.mode & 0o077) !== 0) {
    throw new MediaConfigError(
      `media ring directory ${ringDir} has mode ${(st.mode & 0o777).toString(8)}: others could read the plaintext video; chmod 700 it or remove it`,
    );
  }
  const fsType = (await statfs(ringDir)).type;
  if (fsType === TMPFS_MAGIC || fsType === RAMFS_MAGIC) return;
  if (!o.allowPersistent) {
    throw new MediaConfigError(
      `media ring directory ${ringDir} is not in RAM (filesystem type 0x${fsType.toString(16)}): plaintext video would reach persistent storage; use a tmpfs such as /dev/shm, or set media.camera.ringOnPersistentStorage to true to accept it`,
    );
  }
  o.logger?.warn(
    { ringDir, fsType: fsType.toString(16) },
    'media ring is not in RAM (ringOnPersistentStorage): plaintext video segments reach persistent storage',
  );
}
