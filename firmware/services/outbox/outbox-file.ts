import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  constants as fsConstants,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { writeFileDurablySync } from '../../../common/durable-file.js';
import type { Logger } from '../../../common/logger.js';
import { encodeRecord, MAGIC, type OutboxRecord, RecordType, readRecord } from './records.js';

/** A file larger than this is not read (the live queue is capped far below it). */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

export interface StoredEntry {
  seq: number;
  topic: string;
  payload: Uint8Array;
  retain: boolean;
}

export interface Drops {
  count: number;
  oldestCounter: number;
}

export interface RecoveredState {
  entries: StoredEntry[];
  drops: Drops;
  /** The highest sequence number in the file (removed entries included); new entries go above it. */
  lastSeq?: number;
}

/**
 * The append-only file behind a durable outbox: one process per directory.
 * Appends are written with `writeSync` and, when asked, made durable with
 * `fdatasyncSync` before returning; `rewrite` replaces the file atomically
 * (write a temporary file, fsync, rename, fsync the directory).
 */
export class OutboxFile {
  private constructor(
    readonly path: string,
    private fd: number,
    private bytes: number,
  ) {}

  /** Opens (or creates) `<dir>/outbox.log` and replays it. Never throws for bad content. */
  static open(dir: string, logger: Logger): { file: OutboxFile; state: RecoveredState } {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, 'outbox.log');
    let data: Buffer | undefined;
    try {
      data = readCapped(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        if (!(err instanceof OversizedError)) throw err;
        moveAside(path, logger, err.message, 0);
      }
    }
    if (data === undefined || data.length === 0) {
      const empty = { entries: [], drops: { count: 0, oldestCounter: 0 } };
      return { file: OutboxFile.create(path, empty), state: empty };
    }
    const replay = replayFile(data);
    if (replay.problem === 'corrupt') {
      moveAside(path, logger, replay.reason, replay.state.entries.length);
      return { file: OutboxFile.create(path, replay.state), state: replay.state };
    }
    const fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_APPEND);
    let bytes = data.length;
    if (replay.problem === 'torn') {
      logger.warn(
        { path, reason: replay.reason, droppedBytes: data.length - replay.validBytes },
        'outbox: dropped a torn last record (an append cut short by a crash)',
      );
      ftruncateSync(fd, replay.validBytes);
      fsyncSync(fd);
      bytes = replay.validBytes;
    }
    return { file: new OutboxFile(path, fd, bytes), state: replay.state };
  }

  /** Writes a fresh file holding `state` and opens it for appending. */
  private static create(path: string, state: RecoveredState): OutboxFile {
    const content = snapshot(state);
    writeFileDurablySync(path, content, 0o600, { tmpPath: `${path}.tmp` });
    return new OutboxFile(path, openSync(path, fsConstants.O_WRONLY | fsConstants.O_APPEND), content.length);
  }

  get size(): number {
    return this.bytes;
  }

  /**
   * Appends `records` in one write; with `sync`, they are on disk when this
   * returns. On failure the file is cut back to its previous length (so no
   * partial record stays in the middle) and the error is rethrown.
   */
  append(records: OutboxRecord[], sync: boolean): void {
    const buf = Buffer.concat(records.map(encodeRecord));
    try {
      writeAll(this.fd, buf);
      if (sync) fdatasyncSync(this.fd);
      this.bytes += buf.length;
    } catch (err) {
      try {
        ftruncateSync(this.fd, this.bytes);
      } catch {
        // the error below is what matters; a later open drops a torn tail anyway
      }
      throw err;
    }
  }

  /** Makes every append so far durable, blocking: for close. */
  sync(): void {
    fdatasyncSync(this.fd);
  }

  /** Makes every append so far durable, on libuv's thread pool: the event loop goes on. */
  syncInBackground(): Promise<void> {
    return new Promise((resolve, reject) => fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Replaces the file with just `state` (compaction). */
  rewrite(state: RecoveredState): void {
    const content = snapshot(state);
    writeFileDurablySync(this.path, content, 0o600, { tmpPath: `${this.path}.tmp` });
    const fd = openSync(this.path, fsConstants.O_WRONLY | fsConstants.O_APPEND);
    closeSync(this.fd);
    this.fd = fd;
    this.bytes = content.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}

class OversizedError extends Error {}

function readCapped(path: string): Buffer {
  const fd = openSync(path, fsConstants.O_RDONLY);
  try {
    const { size } = fstatSync(fd);
    if (size > MAX_FILE_BYTES) throw new OversizedError(`file of ${size} bytes is above ${MAX_FILE_BYTES}`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

type Replay =
  | { problem: undefined; state: RecoveredState }
  | { problem: 'torn'; reason: string; validBytes: number; state: RecoveredState }
  | { problem: 'corrupt'; reason: string; state: RecoveredState };

/** Replays the records of `data`; on corruption, `state` is what the valid prefix held. */
export function replayFile(data: Buffer): Replay {
  const entries: StoredEntry[] = [];
  let head = 0;
  let drops: Drops = { count: 0, oldestCounter: 0 };
  let lastSeq = 0;
  const state = (): RecoveredState => ({ entries: entries.slice(head), drops, lastSeq });
  if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    return { problem: 'corrupt', reason: 'not an outbox file (bad magic)', state: state() };
  }
  let offset = MAGIC.length;
  while (offset < data.length) {
    const read = readRecord(data, offset);
    if (read.kind === 'torn')
      return { problem: 'torn', reason: read.reason, validBytes: offset, state: state() };
    if (read.kind === 'corrupt') return { problem: 'corrupt', reason: read.reason, state: state() };
    const { record } = read;
    if (record.type === RecordType.Entry) {
      if (record.seq <= lastSeq) {
        return { problem: 'corrupt', reason: `entry sequence ${record.seq} not increasing`, state: state() };
      }
      lastSeq = record.seq;
      entries.push({ seq: record.seq, topic: record.topic, payload: record.payload, retain: record.retain });
    } else if (record.type === RecordType.Remove) {
      if (entries[head]?.seq !== record.seq) {
        return { problem: 'corrupt', reason: `remove of ${record.seq} is not the head`, state: state() };
      }
      head += 1;
      if (head > 1024 && head * 2 > entries.length) {
        entries.splice(0, head);
        head = 0;
      }
    } else {
      drops = { count: record.count, oldestCounter: record.oldestCounter };
    }
    offset = read.next;
  }
  return { problem: undefined, state: state() };
}

function snapshot(state: RecoveredState): Buffer {
  const records: OutboxRecord[] = state.entries.map((e) => ({ type: RecordType.Entry, ...e }));
  if (state.drops.count > 0) records.push({ type: RecordType.Drops, ...state.drops });
  return Buffer.concat([MAGIC, ...records.map(encodeRecord)]);
}

function moveAside(path: string, logger: Logger, reason: string, kept: number): void {
  const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(path, aside);
  logger.error(
    { path, movedTo: aside, reason, keptEntries: kept },
    kept > 0
      ? `outbox file is corrupt: moved it aside, kept the ${kept} entries before the damage`
      : 'outbox file is corrupt: moved it aside, starting with an empty outbox',
  );
}

function writeAll(fd: number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
}
