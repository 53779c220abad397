/**
 * The pairing window: while it is open, and only then, a Pair command is
 * considered. It opens for a set time (default 180 s) by a button hold on a
 * device without an owner, or by an Administer's command; it closes on a
 * successful pairing, after MAX_PAIRING_FAILURES failed attempts, at its
 * deadline, or when the daemon stops. Every change is reported to `onChange`
 * (which drives the LED and emits a signed PairingWindow event).
 */

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
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      nowMs: () => number;
      onChange: (state: Readonly<PairingWindowState>) => void;
      maxFailures?: number;
    },
  ) {}

  get isOpen(): boolean {
    return this.state.open;
  }

  get current(): Readonly<PairingWindowState> {
    return this.state;
  }

  /** Opens (or re-opens, resetting the failures) for `durationMs`. */
  open(reason: 'button' | 'command', durationMs = DEFAULT_PAIRING_WINDOW_MS): void {
    this.clearTimer();
    this.state = { open: true, closesAtMs: this.deps.nowMs() + durationMs, reason, failures: 0 };
    this.timer = setTimeout(() => this.close('timeout'), durationMs);
    this.timer.unref();
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
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
