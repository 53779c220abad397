import { type Clock, msToNs, nsToMs, type TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { checkNumber } from './check.js';
import { HalError } from './errors.js';
import type { InputLine, Level } from './lines.js';
import { ListenerSet } from './listeners.js';

export type ButtonEvent =
  /**
   * A recognised (debounced) press: ring. `atNs` is the edge that began it;
   * `recognisedAtNs` is when the debouncer decided (the listener runs then).
   */
  | { type: 'press'; atNs: bigint; recognisedAtNs: bigint }
  /** Still held `holdMs` after the press began: pairing requested. At most once per press. */
  | { type: 'hold'; atNs: bigint; heldMs: number }
  /** The recognised release; `atNs` is the edge that ended the press. */
  | { type: 'release'; atNs: bigint; heldMs: number };

export interface Button {
  readonly name: string;
  /**
   * Calls `listener` synchronously for each event, as soon as it is
   * recognised (latency matters: the chime rings from inside the call).
   * A listener that throws is logged and ignored. Returns an unsubscribe
   * function. Throws HalError('closed') after close().
   */
  subscribe(listener: (e: ButtonEvent) => void): () => void;
  /** Stops the timers and listeners and closes the line. Idempotent. */
  close(): Promise<void>;
}

export interface ButtonOptions {
  /** The line must stay asserted this long to count as a press, and deasserted this long for a release. */
  minPressMs: number;
  /** After a release, presses that begin within this time are ignored until released. */
  lockoutMs: number;
  /** Held this long after the press began: one 'hold' event. */
  holdMs: number;
}

export const defaultButtonOptions: ButtonOptions = { minPressMs: 30, lockoutMs: 500, holdMs: 5000 };

type Phase = 'idle' | 'pressed' | 'ignored';

/**
 * Debounces an InputLine into press / hold / release events.
 *
 * Every edge restarts a settle timer of `minPressMs`; when it fires the level
 * is stable. A stable assertion from idle is a press (unless it began within
 * the lockout after the previous release, or the line was already asserted
 * when the button was created: such a press is ignored until released).
 * Bounce shorter than `minPressMs` in either direction changes nothing.
 */
export class DebouncedButton implements Button {
  readonly name: string;
  private readonly listeners: ListenerSet<ButtonEvent>;
  private readonly unwatch: () => void;
  private phase: Phase;
  private level: Level;
  private edgeNs: bigint;
  private pressNs = 0n;
  private held = false;
  private holdOverdue = false;
  private lockoutUntilNs: bigint | undefined;
  private settleTimer: TimerHandle | undefined;
  private holdTimer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly line: InputLine,
    private readonly options: ButtonOptions,
    private readonly deps: { clock: Clock; logger: Logger },
  ) {
    checkNumber('minPressMs', options.minPressMs, { min: 0, max: 60_000, unit: 'ms' });
    checkNumber('lockoutMs', options.lockoutMs, { min: 0, max: 600_000, unit: 'ms' });
    checkNumber('holdMs', options.holdMs, { min: options.minPressMs, max: 600_000, unit: 'ms' });
    this.name = line.name;
    this.listeners = new ListenerSet(deps.logger);
    this.level = line.read();
    this.edgeNs = deps.clock.nowNs();
    this.phase = this.level ? 'ignored' : 'idle';
    if (this.level) deps.logger.warn({ line: line.name }, 'button asserted at start; ignored until released');
    this.unwatch = line.watch((level, atNs) => this.onEdge(level, atNs));
  }

  subscribe(listener: (e: ButtonEvent) => void): () => void {
    if (this.closed) throw new HalError('closed', this.name, 'button is closed');
    return this.listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch();
    this.clearTimers();
    this.listeners.clear();
    await this.line.close();
  }

  private onEdge(level: Level, atNs: bigint): void {
    if (this.closed) return;
    this.level = level;
    this.edgeNs = atNs;
    const { clock } = this.deps;
    if (this.settleTimer !== undefined) clock.clearTimeout(this.settleTimer);
    const elapsedMs = Math.max(0, nsToMs(clock.nowNs() - atNs));
    const delay = Math.max(0, this.options.minPressMs - elapsedMs);
    this.settleTimer = clock.setTimeout(() => this.onSettled(), delay);
  }

  private onSettled(): void {
    this.settleTimer = undefined;
    if (this.level) this.onStableAsserted();
    else this.onStableDeasserted();
  }

  private onStableAsserted(): void {
    if (this.phase === 'pressed') {
      if (this.holdOverdue && !this.held) this.emitHold();
      return;
    }
    if (this.phase === 'ignored') return;
    if (this.lockoutUntilNs !== undefined && this.edgeNs < this.lockoutUntilNs) {
      this.phase = 'ignored';
      this.deps.logger.debug({ line: this.name }, 'press during lockout ignored');
      return;
    }
    this.phase = 'pressed';
    this.pressNs = this.edgeNs;
    this.held = false;
    this.holdOverdue = false;
    this.listeners.emit({ type: 'press', atNs: this.pressNs, recognisedAtNs: this.deps.clock.nowNs() });
    if (this.closed) return; // a listener closed the button
    const sincePressMs = nsToMs(this.deps.clock.nowNs() - this.pressNs);
    const delay = Math.max(0, this.options.holdMs - sincePressMs);
    this.holdTimer = this.deps.clock.setTimeout(() => this.onHoldTimer(), delay);
  }

  private onStableDeasserted(): void {
    if (this.phase === 'ignored') {
      this.phase = 'idle';
      return;
    }
    if (this.phase !== 'pressed') return;
    this.phase = 'idle';
    if (this.holdTimer !== undefined) this.deps.clock.clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.lockoutUntilNs = this.edgeNs + msToNs(this.options.lockoutMs);
    this.listeners.emit({ type: 'release', atNs: this.edgeNs, heldMs: nsToMs(this.edgeNs - this.pressNs) });
  }

  /** At holdMs: a hold if the line is asserted now; if it is mid-bounce, when it settles asserted again. */
  private onHoldTimer(): void {
    this.holdTimer = undefined;
    if (this.phase !== 'pressed' || this.held) return;
    if (this.level) this.emitHold();
    else this.holdOverdue = true;
  }

  private emitHold(): void {
    this.held = true;
    const atNs = this.deps.clock.nowNs();
    this.listeners.emit({ type: 'hold', atNs, heldMs: nsToMs(atNs - this.pressNs) });
  }

  private clearTimers(): void {
    if (this.settleTimer !== undefined) this.deps.clock.clearTimeout(this.settleTimer);
    if (this.holdTimer !== undefined) this.deps.clock.clearTimeout(this.holdTimer);
    this.settleTimer = undefined;
    this.holdTimer = undefined;
  }
}
