import { RigProtocolError } from './errors.js';

interface Waiting<R> {
  what: string;
  resolve: (reply: R) => void;
  reject: (err: RigProtocolError) => void;
  timer: NodeJS.Timeout;
}

/**
 * Pairs replies with requests by request id ("waitress"). Each wait has its
 * own deadline, and the timeout error says exactly which request went
 * unanswered: its type, its id and how long it waited.
 */
export class ReplyWaiter<R> {
  private readonly waiting = new Map<number, Waiting<R>>();

  /**
   * Resolves with the reply to request `id`, or rejects with
   * RigProtocolError('timeout') naming `what` after `timeoutMs`. Registering
   * an id that is already waited on is a programming error (TypeError).
   */
  wait(id: number, what: string, timeoutMs: number): Promise<R> {
    if (this.waiting.has(id)) throw new TypeError(`request id ${id} is already waiting for a reply`);
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(
          new RigProtocolError('timeout', `no reply to ${what} (request #${id}) within ${timeoutMs} ms`, {
            requestId: id,
          }),
        );
      }, timeoutMs);
      this.waiting.set(id, { what, resolve, reject, timer });
    });
  }

  /** Delivers a reply; returns false when nobody waits for that id (late or unknown). */
  deliver(id: number, reply: R): boolean {
    const entry = this.take(id);
    entry?.resolve(reply);
    return entry !== undefined;
  }

  /** Fails one wait, e.g. when its reply arrived but could not be decoded. */
  fail(id: number, err: RigProtocolError): boolean {
    const entry = this.take(id);
    entry?.reject(err);
    return entry !== undefined;
  }

  /** Rejects every wait, e.g. when the connection is lost or closed. */
  rejectAll(err: RigProtocolError): void {
    const entries = [...this.waiting.values()];
    this.waiting.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.reject(err);
    }
  }

  /** What request `id` is, while it waits. */
  describe(id: number): string | undefined {
    return this.waiting.get(id)?.what;
  }

  has(id: number): boolean {
    return this.waiting.has(id);
  }

  get size(): number {
    return this.waiting.size;
  }

  private take(id: number): Waiting<R> | undefined {
    const entry = this.waiting.get(id);
    if (entry === undefined) return undefined;
    this.waiting.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }
}
