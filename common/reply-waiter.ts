import { type Clock, systemClock, type TimerHandle } from './clock.js';

interface Waiting<R> {
  what: string;
  resolve: (reply: R) => void;
  reject: (err: Error) => void;
  timer: TimerHandle;
}

export interface ReplyWaiterOptions<K> {
  /** The error a wait rejects with when its deadline passes; it names the request. */
  timeoutError: (what: string, id: K, timeoutMs: number) => Error;
  clock?: Clock;
}

/**
 * Pairs replies with requests by id: the one waiter of the product (the sim
 * wire client, the rig driver, the hub's commands and pairing). Each wait has
 * its own deadline on the injected clock, and the timeout error, made by the
 * owner, says exactly which request went unanswered.
 */
export class ReplyWaiter<K, R> {
  private readonly waiting = new Map<K, Waiting<R>>();
  private readonly clock: Clock;

  constructor(private readonly options: ReplyWaiterOptions<K>) {
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Resolves with the reply to request `id`, or rejects with the owner's
   * timeout error after `timeoutMs`. Registering an id that is already waited
   * on is a programming error (TypeError).
   */
  wait(id: K, what: string, timeoutMs: number): Promise<R> {
    if (this.waiting.has(id)) throw new TypeError(`request id ${String(id)} is already waiting for a reply`);
    return new Promise<R>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.waiting.delete(id);
        reject(this.options.timeoutError(what, id, timeoutMs));
      }, timeoutMs);
      this.waiting.set(id, { what, resolve, reject, timer });
    });
  }

  /** Delivers a reply; returns false when nobody waits for that id (late or unknown). */
  deliver(id: K, reply: R): boolean {
    const entry = this.take(id);
    entry?.resolve(reply);
    return entry !== undefined;
  }

  /** Fails one wait, e.g. when its reply arrived but could not be decoded. */
  fail(id: K, err: Error): boolean {
    const entry = this.take(id);
    entry?.reject(err);
    return entry !== undefined;
  }

  /**
   * Stops waiting for `id` without settling its promise, for a request that
   * was never sent (its sender throws instead, and nobody awaits the wait).
   */
  cancel(id: K): boolean {
    return this.take(id) !== undefined;
  }

  /** Rejects every wait, e.g. when the connection is lost or closed. */
  rejectAll(err: Error): void {
    const entries = [...this.waiting.values()];
    this.waiting.clear();
    for (const entry of entries) {
      this.clock.clearTimeout(entry.timer);
      entry.reject(err);
    }
  }

  /** What request `id` is, while it waits. */
  describe(id: K): string | undefined {
    return this.waiting.get(id)?.what;
  }

  has(id: K): boolean {
    return this.waiting.has(id);
  }

  get size(): number {
    return this.waiting.size;
  }

  private take(id: K): Waiting<R> | undefined {
    const entry = this.waiting.get(id);
    if (entry === undefined) return undefined;
    this.waiting.delete(id);
    this.clock.clearTimeout(entry.timer);
    return entry;
  }
}
