import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileDurably, writeFileDurablySync } from '../common/durable-file.js';
import { MAX_COUNTER } from './header.js';
import { TrustedClock } from './trusted-clock.js';

/**
 * The receiver's replay protection for commands: a counter window per signing
 * key and a trusted clock, both surviving restarts, power cuts and kill -9.
 *
 * Window, per key (W = `window`, default 32): a counter already accepted is
 * refused; a counter W or more behind the highest accepted is refused; any
 * other counter is accepted, and one above the highest moves the window.
 *
 * Persistence reserves ahead, like CounterStore: the file holds, per key, a
 * high-water mark H such that no counter above H was ever accepted before H
 * was durably written. Accepting a counter c > H first writes
 * H = c + reserve - 1 synchronously; if that write fails, the command is
 * refused. After a restart every counter <= H is refused. A clean `close()`
 * lowers each mark to the exact highest counter accepted (nothing above it was
 * accepted), so after a clean restart the hub's next counter is accepted; after
 * a crash the hub's counters up to the reserved mark are refused (at most
 * `reserve` - 1 of them).
 *
 * Marks never exceed MAX_COUNTER (the largest counter a header may carry);
 * a larger mark in the file (an older version kept any safe integer) is read
 * as MAX_COUNTER: that key's counters are spent, and it must be rotated.
 *
 * Capacity: at most MAX_REPLAY_KEYS keys. Only keys the caller authenticated
 * reach `accept`; when the guard is full, the marks of keys that `isLive`
 * says are no longer enrolled are dropped (a removed or rotated key's old
 * commands are refused by the key epoch anyway), so enrolled keys always
 * find room.
 *
 * Trusted time (`TrustedClock`): the later of the local clock and a floor
 * that advances with the monotonic clock. Accepting a command does not move
 * it; `confirmTime` (the firmware calls it for Administer commands) raises the
 * floor to a signed issue time, never above the trusted time of that moment.
 * The floor is written with every mark, and on its own when it has moved more
 * than `timeSlackMs` past the value on disk.
 *
 * A corrupt file (unreadable JSON, wrong shape, above MAX_REPLAY_FILE_BYTES)
 * cannot say which counters were accepted. The guard then keeps a copy at
 * `<path>.corrupt`, durably writes a fresh file whose `notBeforeMs` is the
 * local time at open plus `maxClockSkewMs`, and refuses, for every key without
 * a mark, any command issued before that time: every command that could have
 * been accepted before the restart was issued earlier (a receiver accepts
 * issued_at_ms only up to its clock plus the skew), while the hub's fresh
 * commands pass and re-establish the marks. `corruption` says what was wrong,
 * for the caller to log. A missing file is a first boot: no marks, no
 * notBefore. One process per file.
 */

/** `replay`: accepted before in this run (a duplicate); `too-old`: refused for any other window reason. */
export type ReplayDecision = 'ok' | 'replay' | 'too-old';

export interface ReplayGuardOptions {
  /** How many counters each durable mark write covers; default 100. */
  reserve?: number;
  /** Width of the counter window; default 32. */
  window?: number;
  /** The receiver's allowed issued_at skew, for the corruption fallback; default 5000. */
  maxClockSkewMs?: number;
  /** Rewrite the file when trusted time moved this far past what is on disk; default 30000. */
  timeSlackMs?: number;
  /** The local clock, read once at open (corruption fallback); default Date.now. */
  nowMs?: () => number;
  /** The monotonic clock the trusted time advances with; default performance.now. */
  monoMs?: () => number;
  /**
   * Whether a key is still enrolled; when the guard is full, the marks of
   * keys for which it returns false make room. Default: every key is live.
   */
  isLive?: (keyId: string) => boolean;
}

/** The guard cannot record an acceptance safely; the command must be refused. */
export class ReplayGuardError extends Error {
  override readonly name = 'ReplayGuardError';
  constructor(
    readonly problem: 'refused' | 'persist-failed' | 'full' | 'closed',
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_REPLAY_RESERVE = 100;
export const DEFAULT_REPLAY_WINDOW = 32;
export const MAX_REPLAY_FILE_BYTES = 64 * 1024;
export const MAX_REPLAY_KEYS = 256;

interface KeyState {
  /** Every counter <= floor is refused (the mark restored at open, else 0). */
  readonly floor: number;
  /** The highest counter accepted in this run, or floor. */
  highest: number;
  /** The durable mark on disk (0 = none). */
  mark: number;
  /** Counters accepted in this run within the window. */
  readonly accepted: Set<number>;
  /** Commands issued before this are refused (corruption fallback; 0 = none). */
  readonly notBeforeMs: number;
}

interface FileState {
  trustedMs: number;
  notBeforeMs: number;
  marks: Map<string, number>;
}

const KEY_ID = /^[0-9a-f]{16}$/;

export class ReplayGuard {
  private readonly keys = new Map<string, KeyState>();
  private readonly clock: TrustedClock;
  private persistedTrustedMs: number;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly reserve: number,
    private readonly window: number,
    private readonly timeSlackMs: number,
    private readonly notBeforeMs: number,
    file: FileState,
    /** What was wrong with the file at open, if it was corrupt. */
    readonly corruption: string | undefined,
    private readonly isLive: (keyId: string) => boolean,
    monoMs: (() => number) | undefined,
  ) {
    this.clock = new TrustedClock(file.trustedMs, monoMs);
    this.persistedTrustedMs = file.trustedMs;
    for (const [keyId, mark] of file.marks) {
      this.keys.set(keyId, { floor: mark, highest: mark, mark, accepted: new Set(), notBeforeMs: 0 });
    }
  }

  static async open(path: string, options: ReplayGuardOptions = {}): Promise<ReplayGuard> {
    const reserve = positive('reserve', options.reserve ?? DEFAULT_REPLAY_RESERVE);
    const window = positive('window', options.window ?? DEFAULT_REPLAY_WINDOW);
    const skew = nonNegative('maxClockSkewMs', options.maxClockSkewMs ?? 5000);
    const timeSlackMs = nonNegative('timeSlackMs', options.timeSlackMs ?? 30_000);
    const isLive = options.isLive ?? (() => true);
    const make = (notBeforeMs: number, file: FileState, corruption: string | undefined): ReplayGuard =>
      new ReplayGuard(
        path,
        reserve,
        window,
        timeSlackMs,
        notBeforeMs,
        file,
        corruption,
        isLive,
        options.monoMs,
      );
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const empty: FileState = { trustedMs: 0, notBeforeMs: 0, marks: new Map() };
    if (text === undefined) return make(0, empty, undefined);
    const parsed = parseFile(text);
    if (typeof parsed !== 'string') return make(parsed.notBeforeMs, parsed, undefined);
    const notBeforeMs = nonNegative('nowMs()', (options.nowMs ?? Date.now)()) + skew;
    await copyFile(path, `${path}.corrupt`).catch(() => undefined); // forensics only
    const fresh: FileState = { ...empty, notBeforeMs };
    await writeFileDurably(path, serialize(fresh), 0o600);
    return make(notBeforeMs, fresh, parsed);
  }

  /** The later of `localNowMs` and the trusted floor (see TrustedClock). */
  trustedNowMs(localNowMs: number): number {
    return this.clock.now(localNowMs);
  }

  /**
   * Confirms the trusted floor with an authenticated issue time (see
   * TrustedClock.confirm: it never moves trusted time ahead), persisting it
   * when it moved more than `timeSlackMs` past the value on disk. Throws
   * ReplayGuardError ('persist-failed') when that write fails; the floor in
   * memory stays confirmed.
   */
  confirmTime(signedMs: number, localNowMs: number): void {
    if (this.closed || !this.clock.confirm(signedMs, localNowMs)) return;
    if (this.clock.floorMs() > this.persistedTrustedMs + this.timeSlackMs) {
      this.writeSync({
        trustedMs: this.clock.floorMs(),
        notBeforeMs: this.notBeforeMs,
        marks: this.marks((s) => s.mark),
      });
    }
  }

  /**
   * The lowest counter of `keyId` that is certainly accepted next (above
   * both the restored mark and the highest accepted), so that a sender
   * refused as too old can skip ahead instead of burning counters one by one.
   */
  nextCounter(keyId: string): number {
    const state = this.keys.get(keyId);
    return state === undefined ? 1 : Math.max(state.floor, state.highest) + 1;
  }

  /** Whether a command may be accepted; changes nothing. */
  check(keyId: string, counter: number, issuedAtMs: number): ReplayDecision {
    if (!Number.isSafeInteger(counter) || counter < 1 || counter > MAX_COUNTER) return 'too-old';
    const state = this.keys.get(keyId);
    if (state === undefined) return issuedAtMs < this.notBeforeMs ? 'too-old' : 'ok';
    if (state.accepted.has(counter)) return 'replay';
    if (counter <= state.highest - this.window || counter <= state.floor) return 'too-old';
    if (issuedAtMs < state.notBeforeMs) return 'too-old';
    return 'ok';
  }

  /**
   * Records an accepted command, first persisting a new mark when the counter
   * is above the one on disk. Throws ReplayGuardError when `check` would not
   * say 'ok' or the write fails: then nothing is recorded.
   */
  accept(keyId: string, counter: number, issuedAtMs: number): void {
    if (this.closed) throw new ReplayGuardError('closed', `replay guard ${this.path} is closed`);
    const decision = this.check(keyId, counter, issuedAtMs);
    if (decision !== 'ok') {
      throw new ReplayGuardError('refused', `counter ${counter} of key ${keyId} is ${decision}`);
    }
    let state = this.keys.get(keyId);
    if (state === undefined) {
      if (!KEY_ID.test(keyId)) throw new TypeError(`not a key id: ${JSON.stringify(keyId)}`);
      if (this.keys.size >= MAX_REPLAY_KEYS) this.evictRetired();
      if (this.keys.size >= MAX_REPLAY_KEYS) {
        throw new ReplayGuardError(
          'full',
          `replay guard ${this.path} already tracks ${MAX_REPLAY_KEYS} keys`,
        );
      }
      state = { floor: 0, highest: 0, mark: 0, accepted: new Set(), notBeforeMs: this.notBeforeMs };
    }
    const newMark = counter > state.mark ? Math.min(counter + this.reserve - 1, MAX_COUNTER) : state.mark;
    if (newMark !== state.mark) {
      const marks = this.marks((s) => s.mark);
      marks.set(keyId, newMark);
      this.writeSync({ trustedMs: this.clock.floorMs(), notBeforeMs: this.notBeforeMs, marks });
      state.mark = newMark;
    }
    this.keys.set(keyId, state);
    state.accepted.add(counter);
    if (counter > state.highest) {
      state.highest = counter;
      for (const c of state.accepted) if (c <= counter - this.window) state.accepted.delete(c);
    }
  }

  /** Writes the exact highest counters as marks (a clean stop loses no counters) and refuses further accepts. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.writeSync({
      trustedMs: this.clock.floorMs(),
      notBeforeMs: this.notBeforeMs,
      marks: this.marks((s) => s.highest),
    });
  }

  private marks(pick: (s: KeyState) => number): Map<string, number> {
    return new Map([...this.keys].map(([id, s]) => [id, pick(s)]));
  }

  /** Drops the marks of keys no longer enrolled, durably. */
  private evictRetired(): void {
    const retired = [...this.keys.keys()].filter((id) => !this.isLive(id));
    if (retired.length === 0) return;
    const marks = this.marks((s) => s.mark);
    for (const id of retired) marks.delete(id);
    this.writeSync({ trustedMs: this.clock.floorMs(), notBeforeMs: this.notBeforeMs, marks });
    for (const id of retired) this.keys.delete(id);
  }

  private writeSync(file: FileState): void {
    try {
      writeFileDurablySync(this.path, serialize(file), 0o600);
    } catch (err) {
      throw new ReplayGuardError('persist-failed', `replay guard ${this.path}: ${(err as Error).message}`);
    }
    this.persistedTrustedMs = file.trustedMs;
  }
}

function serialize(file: FileState): string {
  return `${JSON.stringify({
    v: 1,
    trustedMs: file.trustedMs,
    notBeforeMs: file.notBeforeMs,
    marks: Object.fromEntries(file.marks),
  })}\n`;
}

/** The file's state, or a sentence saying why it is corrupt. */
function parseFile(text: string): FileState | string {
  if (text.length > MAX_REPLAY_FILE_BYTES) return `file is larger than ${MAX_REPLAY_FILE_BYTES} bytes`;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return 'file is not JSON';
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'file is not a JSON object';
  const { v, trustedMs, notBeforeMs, marks } = data as Record<string, unknown>;
  if (v !== 1) return 'file has no version 1';
  if (!isCount(trustedMs) || !isCount(notBeforeMs)) return 'trustedMs or notBeforeMs is not an integer >= 0';
  if (typeof marks !== 'object' || marks === null || Array.isArray(marks)) return 'marks is not an object';
  const entries = Object.entries(marks);
  if (entries.length > MAX_REPLAY_KEYS) return `more than ${MAX_REPLAY_KEYS} keys`;
  for (const [keyId, mark] of entries) {
    if (!KEY_ID.test(keyId) || !isCount(mark))
      return `bad mark for key ${JSON.stringify(keyId.slice(0, 20))}`;
  }
  // A mark above MAX_COUNTER (kept by an older version) means the key's counters are spent.
  const capped = entries.map(([id, mark]) => [id, Math.min(mark as number, MAX_COUNTER)] as [string, number]);
  return { trustedMs, notBeforeMs, marks: new Map(capped) };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`replay guard option "${name}" must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!isCount(value)) {
    throw new TypeError(`replay guard option "${name}" must be an integer >= 0, got ${String(value)}`);
  }
  return value;
}
