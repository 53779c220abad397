import { type Clock, systemClock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import { type Drops, OutboxFile } from './outbox/outbox-file.js';
import { MAX_PAYLOAD_BYTES, MAX_TOPIC_BYTES, RecordType } from './outbox/records.js';

export interface OutboxEntry {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly retain: boolean;
}

export interface OutboxOptions {
  /**
   * Builds the signed "N events were dropped" entry. Called once per run of
   * drops, on the first acknowledgement after them (delivery has resumed),
   * and queued at the tail. Without it drops are only counted and logged.
   */
  dropReport?: (drops: { count: number; oldestDroppedCounter: number }) => OutboxEntry;
  /** The event counter inside an entry, for the report's oldest dropped counter. */
  counterOf?: (entry: OutboxEntry) => number | undefined;
  /** Runs the group commit's delay; default the system clock. */
  clock?: Clock;
}

export interface OpenOutboxOptions extends OutboxOptions {
  max: number;
  logger: Logger;
}

/** Live entries are also capped in bytes, so the file stays far below what `open` reads. */
export const MAX_LIVE_BYTES = 64 * 1024 * 1024;
/** The file is compacted when it is empty of entries and larger than this, */
const COMPACT_EMPTY_BYTES = 64 * 1024;
/** or when it is larger than this plus twice the live entries. */
const COMPACT_SLACK_BYTES = 1024 * 1024;
/**
 * The group commit starts this long after the first append it covers: late
 * enough that the event has reached the broker and the hub (the sync's
 * thread and the disk's completion work would otherwise compete with them
 * for the CPU), early enough that a power cut loses at most a few ms more.
 */
export const GROUP_COMMIT_DELAY_MS = 5;

interface Queued {
  seq: number;
  entry: OutboxEntry;
}

/**
 * Signed events waiting for the broker's acknowledgement, in order. Bounded:
 * when full, the oldest entry is dropped and counted, and a signed report of
 * the drops is queued once delivery resumes. An entry leaves only through
 * `ack()`, after the broker acknowledged it.
 *
 * `new Outbox(max, logger)` keeps entries in memory. `Outbox.open(dir, ...)`
 * keeps them in `<dir>/outbox.log` as well: `push` appends a CRC-checked
 * record before returning (from then on a crash or kill -9 of the daemon
 * cannot lose it: it is in the kernel's page cache), and one fdatasync for
 * every append of the next few ms (a group commit, started
 * GROUP_COMMIT_DELAY_MS after the first of them, once the event is on its
 * way, and run on libuv's thread pool so disk latency never holds up the
 * loop that rings the chime) makes it survive a power cut too.
 * `ack` appends a removal record without a sync (after a power cut the entry
 * is sent again, and the hub drops the duplicate by counter).
 * Reopening replays the file: the unacknowledged entries come back in order.
 */
export class Outbox {
  private readonly entries: Queued[] = [];
  private head0 = 0;
  private droppedCount = 0;
  private liveBytes = 0;
  private nextSeq = 1;
  private drops: Drops = { count: 0, oldestCounter: 0 };
  private readonly pushListeners = new Set<() => void>();
  private file: OutboxFile | undefined;
  private syncScheduled = false;
  private syncRunning = false;

  constructor(
    private readonly max: number,
    private readonly logger: Logger,
    private readonly options: OutboxOptions = {},
  ) {
    if (!Number.isInteger(max) || max < 1)
      throw new TypeError(`outbox: max must be a positive integer, got ${max}`);
  }

  /**
   * A durable outbox in `dir`. A corrupt file is moved aside (logged) and
   * the outbox starts from what could be recovered; a torn last record is dropped.
   */
  static open(dir: string, options: OpenOutboxOptions): Outbox {
    const { max, logger, ...rest } = options;
    const box = new Outbox(max, logger, rest);
    const { file, state } = OutboxFile.open(dir, logger);
    for (const stored of state.entries) {
      box.entries.push({
        seq: stored.seq,
        entry: { topic: stored.topic, payload: stored.payload, retain: stored.retain },
      });
      box.liveBytes += stored.payload.length;
    }
    box.drops = state.drops;
    box.nextSeq = Math.max(state.lastSeq ?? 0, state.entries.at(-1)?.seq ?? 0) + 1;
    box.file = file;
    logger.info(
      { path: file.path, depth: box.depth, pendingDropReport: box.drops.count, bytes: file.size },
      'outbox opened',
    );
    while (box.depth > max || box.liveBytes > MAX_LIVE_BYTES) box.dropOldest();
    box.compactIfNeeded();
    return box;
  }

  private readonly emptyWaiters: (() => void)[] = [];

  push(entry: OutboxEntry): void {
    checkEntry(entry);
    while (
      this.depth >= this.max ||
      (this.depth > 0 && this.liveBytes + entry.payload.length > MAX_LIVE_BYTES)
    ) {
      this.dropOldest();
    }
    this.append(entry, false);
    for (const listener of this.pushListeners) listener();
  }

  /** Calls `listener` synchronously after every push, so a sender can go at once. */
  onPush(listener: () => void): () => void {
    this.pushListeners.add(listener);
    return () => this.pushListeners.delete(listener);
  }

  /** The oldest unacknowledged entry. */
  head(): OutboxEntry | undefined {
    return this.entries[this.head0]?.entry;
  }

  /** Removes `entry` if it is still the head (it may have been dropped meanwhile). */
  ack(entry: OutboxEntry): void {
    const head = this.entries[this.head0];
    if (head?.entry !== entry) return;
    this.removeHead();
    this.write(() => this.file?.append([{ type: RecordType.Remove, seq: head.seq }], false));
    if (this.drops.count > 0 && this.options.dropReport) this.pushReport(this.options.dropReport);
    this.compactIfNeeded();
    if (this.depth === 0) {
      const waiters = this.emptyWaiters.splice(0);
      for (const w of waiters) w();
    }
  }

  /** Resolves once every entry has been acknowledged (at once when there are none). */
  whenEmpty(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  get depth(): number {
    return this.entries.length - this.head0;
  }

  /** Entries dropped since this outbox was created or opened. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Syncs what is pending and closes the file; later pushes and acks are kept in memory only. */
  close(): void {
    this.syncNow();
    const file = this.file;
    this.file = undefined;
    file?.close();
  }

  private get clock(): Clock {
    return this.options.clock ?? systemClock;
  }

  /** One fdatasync for every append of the next GROUP_COMMIT_DELAY_MS, once the events are on their way. */
  private scheduleSync(): void {
    if (this.syncScheduled || !this.file) return;
    this.syncScheduled = true;
    this.clock.setTimeout(() => this.startSync(), GROUP_COMMIT_DELAY_MS);
  }

  private startSync(): void {
    const file = this.file;
    if (this.syncRunning || !file) return; // the running sync's end starts the next one
    this.syncScheduled = false;
    this.syncRunning = true;
    file.syncInBackground().then(
      () => this.syncDone(),
      (err: unknown) => {
        if (this.file === file) {
          this.logger.error({ err: String(err), path: file.path }, 'outbox: fdatasync failed; will retry');
          this.syncScheduled = true;
        }
        this.syncDone();
      },
    );
  }

  private syncDone(): void {
    this.syncRunning = false;
    if (this.syncScheduled) this.clock.setTimeout(() => this.startSync(), GROUP_COMMIT_DELAY_MS);
  }

  /** Blocking sync of whatever is not yet durable: for close. */
  private syncNow(): void {
    if (!this.syncScheduled && !this.syncRunning) return;
    this.syncScheduled = false;
    this.write(() => this.file?.sync());
  }

  private pushReport(build: NonNullable<OutboxOptions['dropReport']>): void {
    const { count, oldestCounter } = this.drops;
    let report: OutboxEntry;
    try {
      report = build({ count, oldestDroppedCounter: oldestCounter });
      checkEntry(report);
    } catch (err) {
      this.logger.error({ err: String(err), count }, 'outbox: could not build the dropped-events report');
      return;
    }
    this.append(report, true);
    this.logger.warn(
      { count, oldestDroppedCounter: oldestCounter },
      'outbox: queued the dropped-events report',
    );
    for (const listener of this.pushListeners) listener();
  }

  /** Appends `entry` durably (with the reset drop count when it is the report) and queues it. */
  private append(entry: OutboxEntry, isReport: boolean): void {
    const seq = this.nextSeq++;
    if (isReport) this.drops = { count: 0, oldestCounter: 0 };
    this.write(() =>
      this.file?.append(
        [
          { type: RecordType.Entry, seq, ...entry },
          ...(isReport ? [{ type: RecordType.Drops as const, ...this.drops }] : []),
        ],
        false,
      ),
    );
    this.scheduleSync();
    this.entries.push({ seq, entry });
    this.liveBytes += entry.payload.length;
  }

  private dropOldest(): void {
    const head = this.entries[this.head0];
    if (!head) return;
    this.removeHead();
    this.droppedCount += 1;
    const counter = this.options.counterOf?.(head.entry) ?? 0;
    this.drops = {
      count: Math.min(this.drops.count + 1, 0xffffffff),
      oldestCounter: this.drops.count === 0 ? counter : this.drops.oldestCounter,
    };
    this.write(() =>
      this.file?.append(
        [
          { type: RecordType.Remove, seq: head.seq },
          { type: RecordType.Drops, ...this.drops },
        ],
        false,
      ),
    );
    this.logger.warn({ dropped: this.droppedCount, max: this.max }, 'outbox full: dropped the oldest event');
  }

  private removeHead(): void {
    const head = this.entries[this.head0];
    if (!head) return;
    this.liveBytes -= head.entry.payload.length;
    this.head0 += 1;
    if (this.head0 === this.entries.length) {
      this.entries.length = 0;
      this.head0 = 0;
    } else if (this.head0 > 1024 && this.head0 * 2 > this.entries.length) {
      this.entries.splice(0, this.head0);
      this.head0 = 0;
    }
  }

  private compactIfNeeded(): void {
    const file = this.file;
    if (!file) return;
    const size = file.size;
    if ((this.depth === 0 && size > COMPACT_EMPTY_BYTES) || size > COMPACT_SLACK_BYTES + 2 * this.liveBytes) {
      this.write(() =>
        file.rewrite({
          entries: this.entries.slice(this.head0).map(({ seq, entry }) => ({ seq, ...entry })),
          drops: this.drops,
        }),
      );
    }
  }

  /**
   * Runs a file operation. A failing disk must not stop the doorbell: the
   * entry stays queued in memory, and the error is logged.
   */
  private write(op: () => void): void {
    try {
      op();
    } catch (err) {
      this.logger.error(
        { err: String(err), path: this.file?.path },
        'outbox: write failed; the queue is kept in memory and may not survive a restart',
      );
    }
  }
}

function checkEntry(entry: OutboxEntry): void {
  if (Buffer.byteLength(entry.topic, 'utf8') > MAX_TOPIC_BYTES || entry.topic.length === 0) {
    throw new TypeError(`outbox: topic must be 1-${MAX_TOPIC_BYTES} bytes`);
  }
  if (entry.payload.length > MAX_PAYLOAD_BYTES) {
    throw new TypeError(`outbox: payload of ${entry.payload.length} bytes is above ${MAX_PAYLOAD_BYTES}`);
  }
}
