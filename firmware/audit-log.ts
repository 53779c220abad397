import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';

/**
 * An append-only, hash-chained audit log (`<stateDir>/audit.log`): one JSON
 * object a line, each carrying the SHA-256 (hex) of the previous line's exact
 * text (`prev`; 64 zeros for the first line ever) and a sequence number that
 * grows by one. Modifying, removing, reordering or inserting a line breaks
 * the chain at the next line, which `verifyAuditLog` reports. Size-capped:
 * when the file would exceed `maxBytes` it becomes `audit.log.1` (replacing
 * the previous one) and a new file continues the chain, so the newest
 * entries are always kept and the two files together verify.
 *
 * What the chain cannot show: the removal of the newest lines (the tail) by
 * someone who can write the file. Each entry is also a signed OtaProgress (or
 * other) event at the hub, which is where that is noticed.
 */

export const GENESIS_HASH = '0'.repeat(64);
export const DEFAULT_AUDIT_MAX_BYTES = 1024 * 1024;
/** Longest line accepted (a writer truncates fields so lines stay far below this). */
export const MAX_AUDIT_LINE_BYTES = 4096;

export interface AuditEntry {
  seq: number;
  atMs: number;
  prev: string;
  /** What happened, e.g. "ota.begun". */
  event: string;
  /** Plain fields (strings, numbers, booleans), each at most 512 characters. */
  data: Record<string, string | number | boolean>;
}

export const lineHash = (line: string): string => createHash('sha256').update(line, 'utf8').digest('hex');

export type AuditProblem = { line: number; reason: string };

export interface AuditVerification {
  ok: boolean;
  entries: AuditEntry[];
  /** The first problem found (1-based line number). */
  problem?: AuditProblem;
  /** Hash of the last line, for a continuation. */
  lastHash: string;
  lastSeq: number;
}

/** Parses one line strictly; throws an Error naming what is wrong. Never anything but Error. */
export function parseAuditLine(line: string): AuditEntry {
  if (Buffer.byteLength(line, 'utf8') > MAX_AUDIT_LINE_BYTES) throw new Error('line too long');
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new Error('not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
  const o = json as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(',');
  if (keys !== 'atMs,data,event,prev,seq') throw new Error(`unexpected fields ${keys.slice(0, 80)}`);
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 1) throw new Error('bad seq');
  if (!Number.isSafeInteger(o.atMs) || (o.atMs as number) < 0) throw new Error('bad atMs');
  if (typeof o.prev !== 'string' || !/^[0-9a-f]{64}$/.test(o.prev)) throw new Error('bad prev');
  if (typeof o.event !== 'string' || !/^[a-z][a-z0-9.-]{0,63}$/.test(o.event)) throw new Error('bad event');
  const data = o.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('bad data');
  for (const [k, v] of Object.entries(data)) {
    if (!/^[A-Za-z][A-Za-z0-9]{0,31}$/.test(k)) throw new Error('bad data key');
    if (typeof v === 'string' ? v.length > 512 : typeof v !== 'number' && typeof v !== 'boolean')
      throw new Error('bad data value');
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error('bad data value');
  }
  return {
    seq: o.seq as number,
    atMs: o.atMs as number,
    prev: o.prev,
    event: o.event,
    data: data as AuditEntry['data'],
  };
}

/**
 * Verifies a log's text (one file, or `audit.log.1` followed by `audit.log`).
 * `start`: the hash and seq the first line must continue from (default: the
 * genesis, or whatever the first line says when `continued` is true, as for
 * a file whose predecessor was rotated away).
 */
export function verifyAuditLog(
  text: string,
  options: { continued?: boolean; start?: { hash: string; seq: number } } = {},
): AuditVerification {
  const entries: AuditEntry[] = [];
  let lastHash = options.start?.hash ?? GENESIS_HASH;
  let lastSeq = options.start?.seq ?? 0;
  const fail = (line: number, reason: string): AuditVerification => ({
    ok: false,
    entries,
    problem: { line, reason },
    lastHash,
    lastSeq,
  });
  if (text === '') return { ok: true, entries, lastHash, lastSeq };
  if (!text.endsWith('\n')) return fail(text.split('\n').length, 'the last line is incomplete');
  const lines = text.slice(0, -1).split('\n');
  for (const [i, line] of lines.entries()) {
    let entry: AuditEntry;
    try {
      entry = parseAuditLine(line);
    } catch (err) {
      return fail(i + 1, (err as Error).message);
    }
    const first = i === 0 && options.continued === true && options.start === undefined;
    if (!first) {
      if (entry.prev !== lastHash) return fail(i + 1, 'prev does not match the previous line (chain broken)');
      if (entry.seq !== lastSeq + 1) return fail(i + 1, `seq ${entry.seq} does not follow ${lastSeq}`);
    }
    entries.push(entry);
    lastHash = lineHash(line);
    lastSeq = entry.seq;
  }
  return { ok: true, entries, lastHash, lastSeq };
}

function clip(data: Record<string, string | number | boolean | undefined>): AuditEntry['data'] {
  const out: AuditEntry['data'] = {};
  for (const [k, v] of Object.entries(data)) {
    if (v === undefined || !/^[A-Za-z][A-Za-z0-9]{0,31}$/.test(k)) continue;
    if (typeof v === 'number' && !Number.isFinite(v)) continue;
    out[k] = typeof v === 'string' ? v.slice(0, 512) : v;
  }
  return out;
}

export interface AuditLogOptions {
  maxBytes?: number;
  nowMs?: () => number;
}

/**
 * The writer. `open` reads the tail of the existing file to continue its
 * chain; a file that does not verify is moved aside (`audit.log.corrupt-<ms>`)
 * and a new chain starts, whose first entry records that. Appends are
 * serialised and each is written with one `write` and an fdatasync.
 */
export class AuditLog {
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private lastHash: string,
    private lastSeq: number,
    private size: number,
    private readonly maxBytes: number,
    private readonly nowMs: () => number,
  ) {}

  static async open(path: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    const maxBytes = options.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    const nowMs = options.nowMs ?? Date.now;
    let text = '';
    try {
      const handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      try {
        const { size } = await handle.stat();
        if (size > maxBytes + MAX_AUDIT_LINE_BYTES) throw new Error(`${path} is over its cap`);
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') text = '\0'; // unreadable: treated as corrupt
    }
    let previous = await readPreviousTail(`${path}.1`);
    const v = verifyAuditLog(text, previous ? { start: previous } : { continued: true });
    let problem: string | undefined;
    if (!v.ok) {
      problem = `line ${v.problem?.line}: ${v.problem?.reason}`;
      const aside = `${path}.corrupt-${nowMs()}`;
      await rename(path, aside).catch(() => undefined);
      previous = undefined;
    }
    const log = v.ok
      ? new AuditLog(path, v.lastHash, v.lastSeq, Buffer.byteLength(text), maxBytes, nowMs)
      : new AuditLog(path, GENESIS_HASH, 0, 0, maxBytes, nowMs);
    if (problem !== undefined) await log.append('audit.reset', { reason: problem.slice(0, 200) });
    return log;
  }

  /** Appends one entry; resolves once it is on disk. Never rejects into callers' flows unless the disk fails. */
  append(event: string, data: Record<string, string | number | boolean | undefined> = {}): Promise<void> {
    const run = this.chain.then(() => this.write(event, data));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(
    event: string,
    data: Record<string, string | number | boolean | undefined>,
  ): Promise<void> {
    const entry: AuditEntry = {
      seq: this.lastSeq + 1,
      atMs: this.nowMs(),
      prev: this.lastHash,
      event,
      data: clip(data),
    };
    const line = JSON.stringify(entry);
    const bytes = Buffer.byteLength(line) + 1;
    if (this.size > 0 && this.size + bytes > this.maxBytes) {
      await rename(this.path, `${this.path}.1`);
      this.size = 0;
    }
    const handle = await open(this.path, 'a', 0o600);
    try {
      await handle.write(`${line}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    this.size += bytes;
    this.lastHash = lineHash(line);
    this.lastSeq = entry.seq;
  }
}

/** The chain position at the end of a rotated file (it is verified as a continuation). */
async function readPreviousTail(path: string): Promise<{ hash: string; seq: number } | undefined> {
  try {
    await stat(path);
  } catch {
    return undefined;
  }
  const handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const text = await handle.readFile('utf8');
    const v = verifyAuditLog(text, { continued: true });
    return v.ok && v.lastSeq > 0 ? { hash: v.lastHash, seq: v.lastSeq } : undefined;
  } finally {
    await handle.close();
  }
}
