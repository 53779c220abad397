import type { Level } from '../lines.js';
import { type PlayOptions, playBounce, playNoise, playPress } from './edge-patterns.js';
import { type NowNs, SimInputLine, SimOutputLine } from './sim-lines.js';

export interface WireChange {
  readonly on: boolean;
  /** `process.hrtime.bigint()` of the write (or the injected time source). */
  readonly atNs: bigint;
}

export type WireListener = (on: boolean, atNs: bigint) => void;

/** How many chime changes chimeHistory() keeps (the oldest are dropped). */
export const CHIME_HISTORY_LIMIT = 10_000;

/**
 * The simulated board: a virtual button wire the rig emulator and tests
 * press, and virtual chime and LED wires they observe. In-process; expose it
 * to other processes with the wire server (`wire-server.ts`).
 *
 * The button actions use real time (the sim backend runs the same debounce
 * code as the linux one, on the system clock). For deterministic logic tests,
 * drive `buttonLine.set()` directly with a FakeClock instead.
 */
export class SimWires {
  readonly buttonLine: SimInputLine;
  readonly chimeLine: SimOutputLine;
  readonly ledLine: SimOutputLine;
  private history: WireChange[] = [];
  private lit = false;
  private readonly lightListeners = new Set<(on: boolean) => void>();
  /** How many changes were ever dropped from the front of `history`. */
  private historyBase = 0;

  constructor(options: { now?: NowNs } = {}) {
    this.buttonLine = new SimInputLine('sim-button', options.now);
    this.chimeLine = new SimOutputLine('sim-chime', options.now);
    this.ledLine = new SimOutputLine('sim-led', options.now);
    this.chimeLine.observe((on, atNs) => {
      this.history.push({ on, atNs });
      if (this.history.length > CHIME_HISTORY_LIMIT) {
        const excess = this.history.length - CHIME_HISTORY_LIMIT;
        this.history.splice(0, excess);
        this.historyBase += excess;
      }
    });
  }

  private readonly driveButton = (level: Level): void => this.buttonLine.set(level);

  /**
   * Asserts the button for `ms` (0..600000), then deasserts, with clean edges,
   * and resolves once it has stayed released `releasedMs` more (default 0).
   */
  press(ms: number, options?: PlayOptions, releasedMs = 0): Promise<void> {
    return playPress(this.driveButton, ms, options, releasedMs);
  }

  /** The same as press(); the name reads better for long holds (pairing). */
  hold(ms: number, options?: PlayOptions): Promise<void> {
    return playPress(this.driveButton, ms, options);
  }

  /**
   * Contact bounce: `edges` (0..10000) toggles `spacingMs` apart (fractions of
   * a ms allowed), ending asserted (one extra edge if needed) for `settleMs`,
   * then deasserted. Every action rejects with a TypeError naming the field
   * for bad arguments, and with an AbortError when `options.signal` aborts
   * (the button is released first).
   */
  bounce(edges: number, spacingMs: number, settleMs = 100, options?: PlayOptions): Promise<void> {
    return playBounce(this.driveButton, edges, spacingMs, settleMs, options);
  }

  /** Chatter that ends deasserted and should never count as a press. */
  noise(edges: number, spacingMs: number, options?: PlayOptions): Promise<void> {
    return playNoise(this.driveButton, edges, spacingMs, options);
  }

  /** Calls `listener` on each change of the chime line. Returns an unsubscribe function. */
  onChime(listener: WireListener): () => void {
    return this.chimeLine.observe(listener);
  }

  /** Calls `listener` on each change of the LED line. Returns an unsubscribe function. */
  onLed(listener: WireListener): () => void {
    return this.ledLine.observe(listener);
  }

  /**
   * The light in front of the camera: a rig's lamp switched on lights the
   * scene the sim camera sees (the media pipeline brightens its test picture),
   * which the motion detector reports.
   */
  setLight(on: boolean): void {
    if (on === this.lit) return;
    this.lit = on;
    for (const l of [...this.lightListeners]) l(on);
  }

  lightState(): boolean {
    return this.lit;
  }

  /** Calls `listener` on each change of the light. Returns an unsubscribe function. */
  onLight(listener: (on: boolean) => void): () => void {
    this.lightListeners.add(listener);
    return () => this.lightListeners.delete(listener);
  }

  /** The last (up to 10 000) changes of the chime line, oldest first. */
  chimeHistory(): ReadonlyArray<WireChange> {
    return [...this.history];
  }

  /**
   * Up to `max` chime changes starting at absolute change number `from`
   * (0 = the first change since start or reset). `first` is the number of the
   * first change returned: above `from` when older changes were dropped.
   * `next` is where to continue.
   */
  chimeHistoryPage(from: number, max: number): { first: number; changes: WireChange[]; next: number } {
    const first = Math.max(from, this.historyBase);
    const start = first - this.historyBase;
    const changes = this.history.slice(start, start + max);
    return { first, changes, next: first + changes.length };
  }

  chimeState(): boolean {
    return this.chimeLine.peek();
  }

  /** Resolves once the chime line is off (at once if it is): a ring now is not refused as busy. */
  chimeOff(): Promise<void> {
    if (!this.chimeState()) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onChime((on) => {
        if (on) return;
        off();
        resolve();
      });
    });
  }

  ledState(): boolean {
    return this.ledLine.peek();
  }

  buttonState(): boolean {
    return this.buttonLine.read();
  }

  /**
   * Forgets the chime history and releases the button. The chime and LED
   * lines are left alone: the devices driving them own their level.
   */
  reset(): void {
    this.history = [];
    this.historyBase = 0;
    this.buttonLine.set(false);
  }

  /** Closes the three wires. */
  async close(): Promise<void> {
    await Promise.all([this.buttonLine.close(), this.chimeLine.close(), this.ledLine.close()]);
  }
}
