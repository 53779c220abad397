import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { asHalError, HalError } from './errors.js';
import type { OutputLine } from './lines.js';

export type LedState = 'off' | 'on' | 'blink-slow' | 'blink-fast' | 'pairing';

export interface StatusLed {
  readonly name: string;
  /** The state last set. */
  readonly state: LedState;
  /**
   * Shows `state`. Synchronous: the first level is written before it returns;
   * blinking continues on timers. Setting the current state again changes
   * nothing (a blink is not restarted). Throws HalError (`io`, `closed`);
   * after a failed set the previous state carries on.
   */
  set(state: LedState): void;
  /** Stops blinking, drives the LED off and closes the line. Idempotent. */
  close(): Promise<void>;
}

/** Alternating on/off durations in ms, starting with on; empty = steady. */
export const ledPatterns: Readonly<Record<LedState, ReadonlyArray<number>>> = {
  off: [],
  on: [],
  'blink-slow': [500, 500],
  'blink-fast': [100, 100],
  pairing: [100, 100, 100, 700], // a double blink, once a second
};

/** A status LED on an OutputLine; blinking runs on the injected clock. */
export class BlinkingStatusLed implements StatusLed {
  readonly name: string;
  private current: LedState = 'off';
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly line: OutputLine,
    private readonly deps: { clock: Clock; logger: Logger },
  ) {
    this.name = line.name;
  }

  get state(): LedState {
    return this.current;
  }

  set(state: LedState): void {
    if (this.closed) throw new HalError('closed', this.name, 'LED is closed');
    if (!(state in ledPatterns))
      throw new TypeError(
        `state must be one of ${Object.keys(ledPatterns).join(', ')}, got ${String(state)}`,
      );
    if (state === this.current) return;
    try {
      this.line.write(state === 'on' || ledPatterns[state].length > 0);
    } catch (err) {
      throw asHalError(err, 'io', this.name, `setting the LED ${state}`); // the old state carries on
    }
    this.stopTimer();
    this.current = state;
    this.schedule(0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTimer();
    try {
      this.line.write(false);
    } catch (err) {
      this.deps.logger.warn({ err, line: this.name }, 'could not turn the LED off on close');
    }
    await this.line.close();
  }

  /** Waits out step `index` of the pattern, then writes the next level. */
  private schedule(index: number): void {
    const pattern = ledPatterns[this.current];
    const ms = pattern[index];
    if (ms === undefined) return;
    this.timer = this.deps.clock.setTimeout(() => {
      const next = (index + 1) % pattern.length;
      try {
        this.line.write(next % 2 === 0);
      } catch (err) {
        this.deps.logger.warn({ err, line: this.name }, 'LED write failed while blinking');
      }
      this.schedule(next);
    }, ms);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
