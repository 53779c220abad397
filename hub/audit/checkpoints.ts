import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { isDeviceId } from '../../proto/index.js';
import type { SeenCheckpoint } from '../../proto/tlog/audit.js';
import { MAX_NOTE_BYTES } from '../../proto/tlog/note.js';
import type { EventWatcher } from '../event-watcher.js';

/** The checkpoints file of one device is read up to this size; older ones beyond it are not needed to catch a rewrite. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/**
 * Every audit checkpoint a hub has seen from each device
 * (`<hubState>/audit/<device>.jsonl`, one `{seenAtMs, note}` a line, in the
 * order seen). `watch` adds those the devices publish, `audit` the one each
 * check fetches. A device whose later log does not extend all of them has
 * rewritten or cut its history (proto/tlog/audit.ts, checkAuditLog).
 */
export class CheckpointStore {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'audit');
  }

  private path(deviceId: string): string {
    if (!isDeviceId(deviceId)) throw new TypeError('bad device id');
    return join(this.dir, `${deviceId}.jsonl`);
  }

  /**
   * Records a checkpoint (a note already seen is not recorded twice). A
   * `proven` one is a checkpoint that every checkpoint before it was checked
   * against (`audit` with the entries, or `audit --consistency` by proofs):
   * it is recorded again as such even if it was seen before, and a later
   * check by proofs starts from it.
   */
  async add(deviceId: string, note: string, seenAtMs: number, proven = false): Promise<void> {
    if (Buffer.byteLength(note) > MAX_NOTE_BYTES) return;
    const seen = await this.list(deviceId);
    if (proven ? seen.at(-1)?.note === note && seen.at(-1)?.proven : seen.some((s) => s.note === note))
      return;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const line = JSON.stringify(proven ? { seenAtMs, note, proven } : { seenAtMs, note });
    await appendFile(this.path(deviceId), `${line}\n`, { mode: 0o600 });
  }

  async list(deviceId: string): Promise<SeenCheckpoint[]> {
    let text: string;
    try {
      const bytes = await readFile(this.path(deviceId));
      text = bytes.subarray(Math.max(0, bytes.length - MAX_FILE_BYTES)).toString('utf8');
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return [];
      throw err;
    }
    const out: SeenCheckpoint[] = [];
    for (const line of text.split('\n')) {
      try {
        const o = JSON.parse(line) as unknown;
        if (typeof o === 'object' && o !== null) {
          const { seenAtMs, note, proven } = o as Record<string, unknown>;
          if (typeof note === 'string' && typeof seenAtMs === 'number')
            out.push(proven === true ? { note, seenAtMs, proven } : { note, seenAtMs });
        }
      } catch {
        // A torn or foreign line: skipped (the checkpoints around it still count).
      }
    }
    return out;
  }
}

/** Keeps every audit checkpoint the watcher's devices publish (watch and serve do). */
export function keepPublishedCheckpoints(watcher: EventWatcher, stateDir: string, logger: Logger): void {
  const store = new CheckpointStore(stateDir);
  watcher.on('event', (e) => {
    const note = e.event.auditCheckpoint?.note;
    if (!note) return;
    store
      .add(e.deviceId, note, e.receivedAtMs)
      .catch((err: unknown) => logger.error({ err }, 'audit checkpoint not kept'));
  });
}
