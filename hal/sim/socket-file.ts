import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { halErrorFromErrno } from '../errno.js';
import { HalError } from '../errors.js';

/** Linux's sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

function isServed(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Makes `path` free for a new server: removes a stale socket left by a crash,
 * but refuses (HalError `busy`) when a live server still answers on it, and
 * (HalError `invalid-config`) when it is something other than a socket.
 */
export async function clearStaleSocket(path: string): Promise<void> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new HalError('invalid-config', path, `socket path longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
  }
  let stats: Awaited<ReturnType<typeof lstat>>;
  try {
    stats = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw halErrorFromErrno(err, path, 'inspecting the socket path');
  }
  if (!stats.isSocket())
    throw new HalError('invalid-config', path, 'exists and is not a socket; not removing it');
  if (await isServed(path)) throw new HalError('busy', path, 'another process is serving this socket');
  await unlink(path).catch((err: unknown) => {
    throw halErrorFromErrno(err, path, 'removing the stale socket');
  });
}

/** Restricts the socket to its owner (mode 0600). */
export async function restrictToOwner(path: string): Promise<void> {
  await chmod(path, 0o600);
}
