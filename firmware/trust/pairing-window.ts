/**
 * The pairing window: while it is open, and only then, a Pair command is
 * considered. It opens for a set time (default 180 s) by a button hold on a
 * device without an owner, or by an Administer's command; it closes on a
 * successful pairing, after MAX_PAIRING_FAILURES failed attempts, at its
 * deadline, or when the daemon stops. Every change is reported to `onChange`
 * (which drives the LED and emits a signed PairingWindow event).
 *
 * One pairing per window: a pairer whose proof verified `claim`s the window
 * before it writes the enrolment; while claimed the window is closed to
 * everyone else, and `release` either closes it (paired) or hands it back.
 */

import { type Clock, systemClock, type TimerHandle } from '../../common/clock.js';

export const DEFAULT_PAIRING_WINDOW_MS = 180_000;
export const MAX_PAIRING_FAILURES = 20;

export type PairingWindowReason =
  | 'button'
  | 'command'
  | 'paired'
  | 'timeout'
  | 'too-many-failures'
  | 'stopped';

export interface PairingWindowState {
  open: boolean;
  closesAtMs: number;
  reason: PairingWindowReason;
  failures: number;
}

export class PairingWindow {
  private state: PairingWindowState = { open: false, closesAtMs: 0, reason: 'stopped', failures: 0 };
  private timer: TimerHandle | undefined;
  private claimed = false;

  constructor(
    private readonly deps: {
      nowMs: () => number;
      /** Runs the window's deadline; default the system clock. */
      clock?: Clock;
      onChange: (state: Readonly<PairingWindowState>) => void;
      maxFailures?: number;
    },
  ) {}

  private get clock(): Clock {
    return this.deps.clock ?? systemClock;
  }

  /** Open and not claimed by a pairing under way. */
  get isOpen(): boolean {
    return this.state.open && !this.claimed;
  }

  /** Takes the open window for one pairing; false when it is closed or already taken. */
  claim(): boolean {
    if (!this.isOpen) return false;
    this.claimed = true;
    return true;
  }

  /** Ends a claim: a pairing closes the window; a failed one hands it back and counts as a failure. */
  release(outcome: 'paired' | 'failed'): void {
    if (!this.claimed) return;
    this.claimed = false;
    if (outcome === 'paired') this.close('paired');
    else this.recordFailure();
  }

  get current(): Readonly<PairingWindowState> {
    return this.state;
  }

  /** Opens (or re-opens, resetting the failures) for `durationMs`. */
  open(reason: 'button' | 'command', durationMs = DEFAULT_PAIRING_WINDOW_MS): void {
    if (this.claimed) return; // a pairing under way ends this window
    this.clearTimer();
    this.state = { open: true, closesAtMs: this.deps.nowMs() + durationMs, reason, failures: 0 };
    this.timer = this.clock.setTimeout(() => this.close('timeout'), durationMs, { background: true });
    this.deps.onChange(this.state);
  }

  close(reason: Exclude<PairingWindowReason, 'button' | 'command'>): void {
    if (!this.state.open) return;
    this.clearTimer();
    this.state = { ...this.state, open: false, reason };
    this.deps.onChange(this.state);
  }

  /** Counts a failed attempt; the window closes at the limit. */
  recordFailure(): void {
    if (!this.state.open) return;
    this.state = { ...this.state, failures: this.state.failures + 1 };
    if (this.state.failures >= (this.deps.maxFailures ?? MAX_PAIRING_FAILURES))
      this.close('too-many-failures');
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
