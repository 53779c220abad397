/**
 * The receiver's trusted time: the later of its local clock and a floor that
 * is a lower bound on real time. A clock set back (a dead RTC battery, a
 * forged time server) cannot revive expired commands, and nothing a sender
 * signs can move the clock forward.
 *
 * The floor advances with the monotonic clock (which no one can set), so it
 * never runs faster than real time. A signed issue time can only *confirm*
 * it: `confirm` raises the floor to the signed time, but never above the
 * trusted time of that moment, so confirming moves nothing that `now`
 * returns; it records, for after a restart, a moment both the signer's clock
 * and ours had passed. Which signers may confirm is the caller's choice (the
 * firmware lets only Administer keys).
 *
 * The floor is persisted by its owner (ReplayGuard writes it in replay.json);
 * after a restart it is a lower bound again, without the downtime.
 */
export class TrustedClock {
  /** The floor at `anchorMono`. */
  private anchorMs: number;
  private anchorMono: number;

  constructor(
    floorMs: number,
    /** Monotonic milliseconds (performance.now by default); never set back, never jumps. */
    private readonly monoMs: () => number = () => performance.now(),
  ) {
    if (!Number.isSafeInteger(floorMs) || floorMs < 0) {
      throw new TypeError(`trusted clock floor must be an integer >= 0, got ${String(floorMs)}`);
    }
    this.anchorMs = floorMs;
    this.anchorMono = monoMs();
  }

  /** The floor now: its last value plus the monotonic time since. */
  floorMs(): number {
    return this.anchorMs + Math.max(0, Math.floor(this.monoMs() - this.anchorMono));
  }

  /** The later of `localMs` and the floor. */
  now(localMs: number): number {
    return Math.max(localMs, this.floorMs());
  }

  /**
   * Raises the floor to `signedMs` (an authenticated issue time), capped at
   * `now(localMs)`. Returns whether the floor moved.
   */
  confirm(signedMs: number, localMs: number): boolean {
    const target = Math.min(signedMs, this.now(localMs));
    if (!Number.isSafeInteger(target) || target <= this.floorMs()) return false;
    this.anchorMs = target;
    this.anchorMono = this.monoMs();
    return true;
  }
}
