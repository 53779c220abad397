import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { type ChimeMode, type ChimeOptions, type ChimePlan, planChime } from './chime-plan.js';
import { asHalError, HalError } from './errors.js';
import type { OutputLine } from './lines.js';

export type { ChimeMode, ChimeOptions, ChimeStep } from './chime-plan.js';

export interface RingResult {
  started: boolean;
  reason?: 'busy' | 'mode-none';
}

export interface Chime {
  readonly name: string;
  readonly mode: ChimeMode;
  /**
   * Starts one ring. Synchronous: when it returns `{ started: true }` the line
   * has already been driven on (no await, no timer before the first write).
   * Returns `{ started: false, reason: 'busy' }` while ringing, which includes
   * the final off time of at least minGapMs (a ring is never queued), and
   * `{ started: false, reason: 'mode-none' }` in mode 'none', which never touches
   * the line. Throws HalError: `io` when the line fails (after an attempt to
   * force it off), `closed` after close().
   */
  ring(): RingResult;
  /** True from ring() until the ring, including its final gap, has ended. */
  readonly ringing: boolean;
  /** Forces the line off, stops the timers and closes the line. Idempotent. */
  close(): Promise<void>;
}

/**
 * Drives a chime relay or buzzer on an OutputLine. Whatever callers or
 * options do, no on-period exceeds maxOnMs (clamped steps, plus a safety timer
 * armed on every on-write that forces the line off) and at least minGapMs
 * passes between on-periods (ring() is refused as busy inside the gap).
 * Caveat: timers cannot preempt a blocked event loop; a hardware limit
 * (a monostable or a thermal fuse) is the only true guarantee.
 */
export class ChimeDriver implements Chime {
  readonly name: string;
  readonly mode: ChimeMode;
  private readonly plan: ChimePlan;
  private step: number | undefined;
  private lastOffNs: bigint | undefined;
  private stepTimer: TimerHandle | undefined;
  private safetyTimer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly line: OutputLine,
    options: ChimeOptions,
    private readonly deps: { clock: Clock; logger: Logger },
  ) {
    this.name = line.name;
    this.mode = options.mode;
    this.plan = planChime(options, deps.logger);
  }

  get ringing(): boolean {
    return this.step !== undefined;
  }

  ring(): RingResult {
    if (this.closed) throw new HalError('closed', this.name, 'chime is closed');
    if (this.mode === 'none') return { started: false, reason: 'mode-none' };
    if (this.step !== undefined || this.inGap()) return { started: false, reason: 'busy' };
    try {
      this.startOn(0);
    } catch (err) {
      this.abort();
      throw asHalError(err, 'io', this.name, 'driving the chime on');
    }
    return { started: true };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort();
    if (this.safetyTimer !== undefined) this.deps.clock.clearTimeout(this.safetyTimer);
    this.safetyTimer = undefined;
    await this.line.close();
  }

  private inGap(): boolean {
    if (this.lastOffNs === undefined) return false;
    const gapNs = BigInt(Math.round(this.plan.minGapMs * 1e6));
    return this.deps.clock.nowNs() - this.lastOffNs < gapNs;
  }

  /** Drives the line on for step `index`; throws if the write fails. */
  private startOn(index: number): void {
    const step = this.plan.steps[index];
    if (step === undefined) {
      this.step = undefined;
      return;
    }
    this.step = index;
    const { clock } = this.deps;
    this.safetyTimer = clock.setTimeout(() => this.onSafetyTimer(), this.plan.maxOnMs);
    this.line.write(true);
    this.stepTimer = clock.setTimeout(() => this.endOn(step.offMs), step.onMs);
  }

  private endOn(offMs: number): void {
    this.stepTimer = undefined;
    if (!this.tryOff('ending an on-period')) {
      this.step = undefined; // the safety timer stays armed and tries again
      return;
    }
    const next = (this.step ?? 0) + 1;
    this.stepTimer = this.deps.clock.setTimeout(() => {
      this.stepTimer = undefined;
      try {
        this.startOn(next);
      } catch (err) {
        this.deps.logger.error({ err, line: this.name }, 'chime write failed mid-ring; forced off');
        this.abort();
      }
    }, offMs);
  }

  private onSafetyTimer(): void {
    this.safetyTimer = undefined;
    this.deps.logger.error(
      { line: this.name, maxOnMs: this.plan.maxOnMs },
      'chime safety cap reached; forcing off',
    );
    this.abort();
  }

  /** Writes the line off; on success disarms the safety timer and starts the gap. */
  private tryOff(action: string): boolean {
    try {
      this.line.write(false);
    } catch (err) {
      this.deps.logger.error({ err, line: this.name }, `chime write failed while ${action}`);
      return false;
    }
    if (this.safetyTimer !== undefined) this.deps.clock.clearTimeout(this.safetyTimer);
    this.safetyTimer = undefined;
    this.lastOffNs = this.deps.clock.nowNs();
    return true;
  }

  /** Stops everything and forces the line off (best effort; failures are logged). */
  private abort(): void {
    const { clock } = this.deps;
    if (this.stepTimer !== undefined) clock.clearTimeout(this.stepTimer);
    this.stepTimer = undefined;
    this.step = undefined;
    if (!this.tryOff('forcing off') && this.safetyTimer === undefined && !this.closed) {
      this.safetyTimer = clock.setTimeout(() => this.onSafetyTimer(), this.plan.maxOnMs);
    }
  }
}
