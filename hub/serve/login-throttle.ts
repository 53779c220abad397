/**
 * Slows down guessing: after FREE_FAILURES failed logins for one key (an
 * account name, or a client address), each further attempt must wait twice
 * as long as the one before (1 s, 2 s, 4 s ... up to 15 min); a success
 * clears the key. Keys are capped in number, oldest dropped, so a flood of
 * made-up names cannot grow the hub's memory.
 */
export const FREE_FAILURES = 5;
const MAX_WAIT_MS = 15 * 60_000;
const MAX_KEYS = 10_000;

export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; lastMs: number }>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** Milliseconds until `key` may try again (0: now). */
  waitMs(key: string): number {
    const f = this.failures.get(key);
    if (!f || f.count < FREE_FAILURES) return 0;
    const wait = Math.min(MAX_WAIT_MS, 1000 * 2 ** (f.count - FREE_FAILURES));
    return Math.max(0, f.lastMs + wait - this.nowMs());
  }

  failed(key: string): void {
    const f = this.failures.get(key) ?? { count: 0, lastMs: 0 };
    this.failures.delete(key);
    this.failures.set(key, { count: Math.min(f.count + 1, 64), lastMs: this.nowMs() });
    while (this.failures.size > MAX_KEYS) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  succeeded(key: string): void {
    this.failures.delete(key);
  }
}
