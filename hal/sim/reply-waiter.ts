import { HalError } from '../errors.js';

interface Waiting<R> {
  resolve: (reply: R) => void;
  reject: (err: HalError) => void;
  timer: NodeJS.Timeout;
}

/**
 * Pairs replies with requests by id. Each wait has its own timeout, and the
 * timeout error says exactly which request went unanswered.
 */
export class ReplyWaiter<R> {
  private readonly waiting = new Map<number, Waiting<R>>();

  constructor(private readonly device: string) {}

  /** Resolves with the reply to request `id`, or rejects with HalError('timeout') naming `what`. */
  wait(id: number, what: string, timeoutMs: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(
          new HalError('timeout', this.device, `no reply to ${what} (request #${id}) within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
    });
  }

  /** Delivers a reply; returns false when nobody waits for that id (late or unknown). */
  deliver(id: number, reply: R): boolean {
    const entry = this.waiting.get(id);
    if (entry === undefined) return false;
    this.waiting.delete(id);
    clearTimeout(entry.timer);
    entry.resolve(reply);
    return true;
  }

  /** Rejects every wait, e.g. when the connection is lost or closed. */
  rejectAll(err: HalError): void {
    for (const entry of this.waiting.values()) {
      clearTimeout(entry.timer);
      entry.reject(err);
    }
    this.waiting.clear();
  }

  get size(): number {
    return this.waiting.size;
  }
}
