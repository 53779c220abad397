/**
 * Exponential backoff with full jitter: attempt n waits a uniformly random
 * time in [minMs, min(maxMs, minMs * 2^n)], so that many devices that lost
 * the same broker do not all come back in the same millisecond.
 */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    if (!(options.minMs > 0) || !(options.maxMs >= options.minMs)) {
      throw new TypeError(
        `backoff: need 0 < minMs <= maxMs, got minMs=${options.minMs} maxMs=${options.maxMs}`,
      );
    }
    this.random = options.random ?? Math.random;
  }

  /** The delay before the next attempt; each call counts as one more failure. */
  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(this.options.minMs + this.random() * (ceiling - this.options.minMs));
  }

  /** Call after a success: the next failure waits the minimum again. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
