import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, rename, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { type Clock, systemClock, type TimerHandle } from '../common/clock.js';
import { writeFileDurably } from '../common/durable-file.js';
import type { Logger } from '../common/logger.js';
import type { SigningKey } from '../proto/index.js';
import {
  AUDIT_ENDED_PREFIX,
  auditKeyName,
  auditLeaf,
  auditOrigin,
  formatAuditLine,
  MAX_AUDIT_LINE_BYTES,
  parseAuditLine,
} from '../proto/tlog/audit.js';
import { consistencyProof, EMPTY_ROOT, inclusionProof, nodeHash } from '../proto/tlog/merkle.js';
import { formatCheckpoint, signNote } from '../proto/tlog/note.js';
import { formatProof } from '../proto/tlog/proof.js';

/** The log file and the latest signed checkpoint, under `<stateDir>/audit/`. */
export const AUDIT_DIR = 'audit';
const LOG_FILE = 'log.jsonl';
const CHECKPOINT_FILE = 'checkpoint';
/** The hash-chained log of earlier versions, recorded once in the first entry of this one. */
const LEGACY_FILE = 'audit.log';
/** A batch of entries is signed this long after its first append. */
export const CHECKPOINT_DELAY_MS = 500;
/**
 * The most the log holds (about 150 000 entries). An append-only log cannot
 * drop its oldest entries; beyond this, appends fail (logged) until a factory
 * reset starts a new log.
 */
export const MAX_AUDIT_BYTES = 32 * 1024 * 1024;

export interface AuditLogOptions {
  deviceId: string;
  /** The device key: it signs the checkpoints. */
  key: SigningKey;
  nowMs?: () => number;
  clock?: Clock;
  logger?: Logger;
  /** Each new signed checkpoint (the daemon sends it as an AuditCheckpoint event). */
  onCheckpoint?: (note: string) => void;
}

/**
 * The device's audit log: a transparency log in standard formats
 * (proto/tlog/audit.ts). Entries are JSON lines in `<stateDir>/audit/log.jsonl`,
 * each appended with one write and an fdatasync; each line is a leaf of an
 * RFC 6962 Merkle tree. A batch of appends is followed, `CHECKPOINT_DELAY_MS`
 * later, by a C2SP checkpoint signed with the device key, written to
 * `<stateDir>/audit/checkpoint` and handed to `onCheckpoint`. A hub that keeps
 * the checkpoints it saw catches any later rewrite or truncation of the file,
 * even by someone holding the device key (`doorbell-hub audit --verify`).
 *
 * On open, a torn last line (a power cut during a write, never covered by a
 * checkpoint) is cut off; any other damage moves the file aside
 * (`log.jsonl.corrupt-<ms>`) and a new log starts whose first entry says so.
 */
export class AuditLog {
  private readonly lines: string[] = [];
  private readonly leaves: Buffer[] = [];
  /**
   * The roots of the perfect subtrees the log decomposes into, largest first
   * (RFC 6962's tree splits at the largest power of two): the current root in
   * O(log n), kept up to date on every append, so that a checkpoint never
   * rehashes the whole log on the thread that rings the chime.
   */
  private readonly frontier: { hash: Buffer; size: number }[] = [];
  /** The last signed checkpoint without extensions, reused while the log has not grown. */
  private signed: { size: number; note: string } | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: TimerHandle | undefined;
  private bytes = 0;
  private closed = false;
  private readonly clock: Clock;
  private readonly nowMs: () => number;
  readonly origin: string;

  private constructor(
    readonly dir: string,
    private readonly options: AuditLogOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.nowMs = options.nowMs ?? Date.now;
    this.origin = auditOrigin(options.deviceId, options.key.keyId);
  }

  static async open(stateDir: string, options: AuditLogOptions): Promise<AuditLog> {
    const dir = join(stateDir, AUDIT_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const log = new AuditLog(dir, options);
    const problem = await log.load();
    if (problem !== undefined) await log.append('audit.reset', { reason: problem.slice(0, 200) });
    if (log.size === 0) await log.recordLegacy(stateDir);
    return log;
  }

  get size(): number {
    return this.lines.length;
  }

  /** Appends one entry; resolves with its index (seq - 1) once it is on disk. */
  append(event: string, data: Record<string, string | number | boolean | undefined> = {}): Promise<number> {
    if (this.closed) return Promise.reject(new Error(`the audit log is closed; ${event} not logged`));
    const run = this.chain.then(() => this.write(event, data));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Entry lines from index `from` (0-based), at most `maxBytes` of them (and at least one if any). */
  page(from: number, maxBytes: number): string[] {
    const out: string[] = [];
    let bytes = 0;
    for (let i = from; i < this.lines.length; i++) {
      const line = this.lines[i] as string;
      bytes += Buffer.byteLength(line) + 4;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(line);
    }
    return out;
  }

  /** A checkpoint of the whole log as it is now, signed by the device key. */
  checkpoint(extensions?: string[]): string {
    if (extensions === undefined && this.signed?.size === this.size) return this.signed.note;
    const text = formatCheckpoint({
      origin: this.origin,
      size: this.size,
      root: this.root(),
      ...(extensions ? { extensions } : {}),
    });
    const note = signNote(text, auditKeyName(this.options.deviceId), this.options.key);
    if (extensions === undefined) this.signed = { size: this.size, note };
    return note;
  }

  /** MTH of the whole log, from the frontier. */
  private root(): Buffer {
    if (this.frontier.length === 0) return EMPTY_ROOT;
    let r = (this.frontier.at(-1) as { hash: Buffer }).hash;
    for (let i = this.frontier.length - 2; i >= 0; i--)
      r = nodeHash((this.frontier[i] as { hash: Buffer }).hash, r);
    return r;
  }

  private addLeaf(line: string): void {
    const leaf = auditLeaf(line);
    this.lines.push(line);
    this.leaves.push(leaf);
    this.frontier.push({ hash: leaf, size: 1 });
    for (;;) {
      const n = this.frontier.length;
      const right = this.frontier[n - 1];
      const left = this.frontier[n - 2];
      if (!left || !right || left.size !== right.size) break;
      this.frontier.splice(n - 2, 2, { hash: nodeHash(left.hash, right.hash), size: left.size * 2 });
    }
  }

  /**
   * The log's last checkpoint, before the log is wiped (a factory reset):
   * signed with the extension line `ended: <reason>` and published like the
   * others. Nothing may be appended after it.
   */
  async close(reason: string): Promise<void> {
    await this.chain;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const note = this.checkpoint([`${AUDIT_ENDED_PREFIX}${reason}`]);
    await writeFileDurably(join(this.dir, CHECKPOINT_FILE), note, 0o600);
    this.options.onCheckpoint?.(note);
    this.closed = true;
  }

  /**
   * A C2SP tlog-proof that entry `index` is in the log, against a checkpoint
   * signed now; its `extra` line carries the entry itself.
   */
  proof(index: number): string {
    const line = this.lines[index];
    if (line === undefined) throw new RangeError(`no entry ${index}`);
    return formatProof({
      index,
      hashes: this.inclusionProof(index),
      checkpoint: this.checkpoint(),
      extra: Buffer.from(line, 'utf8'),
    });
  }

  /**
   * A checkpoint signed now and, for each size given, the RFC 6962
   * consistency proof from the tree of that size to it (empty for its own
   * size or 0). A size beyond the log's is a RangeError: the log was cut.
   */
  consistency(fromSizes: readonly number[]): { checkpoint: string; proofs: Buffer[][] } {
    for (const s of fromSizes) {
      if (!Number.isSafeInteger(s) || s < 0 || s > this.size)
        throw new RangeError(`the log has ${this.size} entries, not ${s}`);
    }
    return {
      checkpoint: this.checkpoint(),
      proofs: fromSizes.map((s) => (s === 0 || s === this.size ? [] : this.consistencyProof(s))),
    };
  }

  inclusionProof(index: number, size = this.size): Buffer[] {
    return inclusionProof(this.leaves.slice(0, size), index);
  }

  consistencyProof(size1: number, size2 = this.size): Buffer[] {
    return consistencyProof(this.leaves.slice(0, size2), size1);
  }

  /** Signs and publishes the pending checkpoint now (on stop). */
  async flush(): Promise<void> {
    await this.chain;
    if (this.closed) return;
    if (this.timer === undefined) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.publishCheckpoint();
  }

  private async write(
    event: string,
    data: Record<string, string | number | boolean | undefined>,
  ): Promise<number> {
    const line = formatAuditLine(this.size + 1, this.nowMs(), event, data);
    if (Buffer.byteLength(line) > MAX_AUDIT_LINE_BYTES) throw new RangeError('audit entry too long');
    if (this.bytes + Buffer.byteLength(line) + 1 > MAX_AUDIT_BYTES)
      throw new RangeError('the audit log is full');
    const handle = await open(join(this.dir, LOG_FILE), 'a', 0o600);
    try {
      await handle.write(`${line}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    this.addLeaf(line);
    this.bytes += Buffer.byteLength(line) + 1;
    const index = this.size - 1;
    this.timer ??= this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.publishCheckpoint().catch((err: unknown) =>
          this.options.logger?.error({ err }, 'audit checkpoint not written'),
        );
      },
      CHECKPOINT_DELAY_MS,
      { background: true },
    );
    return index;
  }

  private async publishCheckpoint(): Promise<void> {
    const note = this.checkpoint();
    await writeFileDurably(join(this.dir, CHECKPOINT_FILE), note, 0o600);
    this.options.onCheckpoint?.(note);
  }

  /** Reads the file; returns a problem when it had to be set aside. */
  private async load(): Promise<string | undefined> {
    const path = join(this.dir, LOG_FILE);
    let text: string;
    try {
      const handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      try {
        const { size } = await handle.stat();
        if (size > MAX_AUDIT_BYTES + MAX_AUDIT_LINE_BYTES) throw new Error('over its cap');
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return this.setAside(path, `unreadable: ${(err as Error).message}`);
    }
    const end = text.lastIndexOf('\n') + 1;
    if (end < text.length) {
      this.options.logger?.warn({ bytes: text.length - end }, 'audit log: a torn last line was cut off');
      await truncate(path, Buffer.byteLength(text.slice(0, end)));
      text = text.slice(0, end);
    }
    const lines = text === '' ? [] : text.slice(0, -1).split('\n');
    for (const [i, line] of lines.entries()) {
      try {
        parseAuditLine(line, i + 1);
      } catch (err) {
        return this.setAside(path, `line ${i + 1}: ${(err as Error).message}`);
      }
    }
    for (const line of lines) this.addLeaf(line);
    this.bytes = Buffer.byteLength(text);
    return undefined;
  }

  private async setAside(path: string, problem: string): Promise<string> {
    await rename(path, `${path}.corrupt-${this.nowMs()}`).catch(() => undefined);
    this.options.logger?.error({ problem }, 'audit log damaged: set aside, a new log begins');
    return problem;
  }

  /** Records the hash-chained `audit.log` of earlier versions (left in place) by its size and SHA-256. */
  private async recordLegacy(stateDir: string): Promise<void> {
    let legacy: Buffer;
    try {
      legacy = await readFile(join(stateDir, LEGACY_FILE));
    } catch {
      return;
    }
    await this.append('audit.migrated', {
      file: LEGACY_FILE,
      bytes: legacy.length,
      sha256: createHash('sha256').update(legacy).digest('hex'),
    });
  }
}
