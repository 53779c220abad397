/**
 * A token bucket: at most `perSecond` actions per second on average, bursts up
 * to `perSecond`. A clock that goes back refills nothing for that step and
 * takes nothing away: the bucket never goes below empty, so a clock set back
 * cannot silence what it limits until the clock catches up.
 */
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
    const elapsed = Math.max(0, now - this.last);
    this.tokens = Math.min(this.perSecond, this.tokens + (elapsed / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
