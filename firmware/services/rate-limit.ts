/** A token bucket: at most `perSecond` actions per second on average, bursts up to `perSecond`. */
export class RateLimit {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.tokens = perSecond;
    this.last = nowMs();
  }

  tryTake(): boolean {
    const now = this.nowMs();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
