declare const timerBrand: unique symbol;

/** An opaque timer handle; only the clock that made it can clear it. */
export type TimerHandle = { readonly [timerBrand]: true };

/**
 * Time as the product sees it. Injected everywhere timing matters so that logic
 * tests run on a FakeClock, deterministically and without sleeping.
 */
export interface Clock {
  /** Monotonic nanoseconds, on the same scale as line edge timestamps (`process.hrtime.bigint()`). */
  nowNs(): bigint;
  /**
   * Calls `fn` once after at least `ms` milliseconds. With `background`, the
   * timer alone does not keep the process alive (a deadline minutes away, a
   * heartbeat): what the process is for must.
   */
  setTimeout(fn: () => void, ms: number, options?: { background?: boolean }): TimerHandle;
  /** Cancels a timer; harmless when it has fired or was cleared. */
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `process.hrtime.bigint()` and Node's timers. */
export const systemClock: Clock = {
  nowNs: () => process.hrtime.bigint(),
  setTimeout: (fn, ms, options) => {
    const timer = setTimeout(fn, ms);
    if (options?.background) timer.unref();
    return timer as unknown as TimerHandle;
  },
  clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout),
};

interface FakeTimer {
  readonly seq: number;
  readonly dueNs: bigint;
  readonly fn: () => void;
}

const NS_PER_MS = 1_000_000;

/** Converts milliseconds (fractions allowed) to integer nanoseconds. */
export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * NS_PER_MS));
}

/** Converts a nanosecond interval to milliseconds. */
export function nsToMs(ns: bigint): number {
  return Number(ns) / NS_PER_MS;
}

/**
 * A clock that only moves when told to. `advance(ms)` fires every timer that
 * falls due, in due-time order (then creation order), with `nowNs()` set to
 * each timer's due time while it runs; timers scheduled meanwhile that fall
 * due inside the window fire too.
 */
export class FakeClock implements Clock {
  private now: bigint;
  private seq = 0;
  private readonly timers = new Map<TimerHandle, FakeTimer>();

  constructor(startNs = 1_000_000_000n) {
    this.now = startNs;
  }

  nowNs(): bigint {
    return this.now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = {} as TimerHandle;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.timers.set(handle, { seq: this.seq++, dueNs: this.now + msToNs(delay), fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle);
  }

  /** Number of timers not yet fired or cleared: tests check it is 0 after close(). */
  pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms` (fractions allowed), firing due timers in order. */
  advance(ms: number): void {
    const target = this.now + msToNs(ms);
    for (;;) {
      const next = this.nextDue(target);
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.now = next[1].dueNs;
      next[1].fn();
    }
    this.now = target;
  }

  private nextDue(limitNs: bigint): [TimerHandle, FakeTimer] | undefined {
    let best: [TimerHandle, FakeTimer] | undefined;
    for (const entry of this.timers) {
      const t = entry[1];
      if (t.dueNs > limitNs) continue;
      if (
        best === undefined ||
        t.dueNs < best[1].dueNs ||
        (t.dueNs === best[1].dueNs && t.seq < best[1].seq)
      ) {
        best = entry;
      }
    }
    return best;
  }
}

/** `promise`'s value, or `'timeout'` once `ms` have passed on `clock`, whichever comes first. */
export function within<T>(
  promise: Promise<T>,
  ms: number,
  clock: Clock = systemClock,
): Promise<T | 'timeout'> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => resolve('timeout'), ms);
    promise.then(
      (v) => {
        clock.clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clock.clearTimeout(timer);
        reject(err);
      },
    );
  });
}
