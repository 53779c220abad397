import { access, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Everything the daemon keeps in its state directory. A factory reset removes
 * exactly these entries, and nothing else: a misconfigured state directory
 * (say, /home) loses no foreign files.
 */
export const STATE_ENTRIES = [
  'identity.pem', // the device's signing key
  'pairing-secret',
  'enrolment.json', // enrolled keys, roles, footage recipients
  'key-epoch',
  'event-counter',
  'replay.json', // command counters
  'settings.json',
  'outbox', // undelivered events
  'clips', // encrypted clips and snapshots
  'media',
  'ota', // staged update bundles
  'audit', // the transparency log and its latest signed checkpoint
  'audit.log', // the hash-chained audit log of earlier versions (and its rotated predecessor)
  'audit.log.1',
  'daemon.pid',
] as const;

/** Removes every entry of STATE_ENTRIES from `stateDir`; returns the ones that existed. */
export async function wipeState(stateDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of STATE_ENTRIES) {
    const path = join(stateDir, entry);
    const existed = await access(path).then(
      () => true,
      () => false,
    );
    await rm(path, { recursive: true, force: true });
    if (existed) removed.push(entry);
  }
  return removed;
}

/** The pid recorded by a running daemon, if that process is alive. */
export async function runningDaemonPid(stateDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(join(stateDir, 'daemon.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}
