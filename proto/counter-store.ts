import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileDurably, writeFileDurablySync } from '../common/durable-file.js';
import { MAX_COUNTER } from './header.js';

/**
 * The outgoing `Header.counter` of one signing key, strictly increasing across
 * restarts, power cuts and kill -9, without a disk write per message.
 *
 * The file holds a high-water mark H: no counter above H was ever handed out
 * before H was durably written. `open` starts at H + 1 and persists
 * H + reserve before returning; when `next` reaches the end of a block it
 * persists the next mark synchronously (write tmp, fsync, rename, fsync dir)
 * before handing the number out: one short blocking write per `reserve`
 * counters, never two writes in flight, so the mark on disk can only grow.
 * An unclean stop skips the rest of a block, which receivers accept
 * (counters must increase, not be contiguous). One process per file.
 */

export interface CounterStoreOptions {
  /** How many counters each durable write covers; default 1000. */
  reserve?: number;
}

/** The store cannot hand out a counter without risking a repeat. */
export class CounterStoreError extends Error {
  override readonly name = 'CounterStoreError';
  constructor(
    readonly problem: 'corrupt' | 'exhausted' | 'persist-failed',
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_COUNTER_RESERVE = 1000;
/** The furthest skipTo moves a counter in one call. */
export const MAX_COUNTER_SKIP = 10_000_000;

export class CounterStore {
  /** The last counter handed out (0 before the first). */
  private current: number;
  /** The highest counter known to be durably persisted. */
  private durable: number;

  private constructor(
    readonly path: string,
    private readonly reserve: number,
    start: number,
    durable: number,
  ) {
    this.current = start;
    this.durable = durable;
  }

  /** Reads the high-water mark at `path` (0 if the file is missing) and reserves the first block. */
  static async open(path: string, options: CounterStoreOptions = {}): Promise<CounterStore> {
    const reserve = options.reserve ?? DEFAULT_COUNTER_RESERVE;
    if (!Number.isSafeInteger(reserve) || reserve < 1) {
      throw new TypeError(`counter store option "reserve" must be an integer >= 1, got ${String(reserve)}`);
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const mark = await readMark(path);
    const durable = checkedAdd(mark, reserve);
    await writeMark(path, durable);
    return new CounterStore(path, reserve, mark, durable);
  }

  /**
   * The next counter. Synchronous; at the end of each block it first writes
   * the next high-water mark durably. Throws CounterStoreError
   * ('persist-failed') when that write fails: no counter is ever handed out
   * beyond what is on disk.
   */
  next(): number {
    if (this.current >= MAX_COUNTER) {
      throw new CounterStoreError(
        'exhausted',
        `counter store ${this.path}: every counter up to ${MAX_COUNTER} was used`,
      );
    }
    if (this.current >= this.durable) {
      this.persistMark(checkedAdd(this.durable, this.reserve));
    }
    this.current += 1;
    return this.current;
  }

  /**
   * Makes the next counter at least `counter` (never lower than it would be
   * anyway): for a receiver that reports its window moved past ours. The
   * skipped counters are never handed out.
   */
  skipTo(counter: number, maxJump = MAX_COUNTER_SKIP): void {
    if (!Number.isSafeInteger(counter) || counter < 1) {
      throw new TypeError(`skipTo needs a safe integer >= 1, got ${String(counter)}`);
    }
    const last = counter - 1;
    if (last <= this.current) return;
    if (last >= MAX_COUNTER) {
      throw new RangeError(
        `skipTo(${counter}) is beyond the last counter a header may carry (${MAX_COUNTER})`,
      );
    }
    if (last - this.current > maxJump) {
      // One receiver must not be able to burn a key's counter space for all the others.
      throw new RangeError(`skipTo(${counter}) jumps more than ${maxJump} counters ahead of ${this.current}`);
    }
    if (last > this.durable) {
      this.persistMark(checkedAdd(last, this.reserve));
    }
    this.current = last;
  }

  /** Writes `mark` durably before any counter up to it is handed out. */
  private persistMark(mark: number): void {
    try {
      writeMarkSync(this.path, mark);
    } catch (err) {
      throw new CounterStoreError('persist-failed', `counter store ${this.path}: ${(err as Error).message}`);
    }
    this.durable = mark;
  }

  /** The highest counter that is durably reserved. */
  get reservedUpTo(): number {
    return this.durable;
  }

  /** Every reservation is written before it is used; kept so callers can await a clean stop. */
  async flush(): Promise<void> {}
}

async function readMark(path: string): Promise<number> {
  let text: string;
  try {
    // A mark is at most 16 digits and a newline; never read a large file whole.
    if ((await stat(path)).size > 64) {
      throw new CounterStoreError('corrupt', `counter store ${path} is larger than any counter file`);
    }
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const mark = /^(0|[1-9][0-9]*)\n?$/.test(text) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(mark)) {
    // Never guess: restarting from a lower value would repeat counters.
    throw new CounterStoreError(
      'corrupt',
      `counter store ${path} does not hold a counter: ${JSON.stringify(text.slice(0, 40))}`,
    );
  }
  return mark;
}

/** The mark survives any crash: see writeFileDurably. */
function writeMark(path: string, mark: number): Promise<void> {
  return writeFileDurably(path, `${mark}\n`, 0o600);
}

function checkedAdd(a: number, b: number): number {
  const sum = a + b;
  if (!Number.isSafeInteger(sum)) throw new CounterStoreError('exhausted', 'counter would exceed 2^53-1');
  return sum;
}

function writeMarkSync(path: string, mark: number): void {
  writeFileDurablySync(path, `${mark}\n`, 0o600);
}
