import { HalError } from '../errors.js';
import type { EdgeListener, InputLine, Level, OutputLine } from '../lines.js';

/** Where sim lines take their timestamps: hrtime by default, a FakeClock in logic tests. */
export type NowNs = () => bigint;

const hrtimeNow: NowNs = () => process.hrtime.bigint();

function notify(listeners: Set<EdgeListener>, level: Level, atNs: bigint): void {
  for (const listener of [...listeners]) listener(level, atNs);
}

/**
 * A virtual input wire. Tests and the wire server drive it with `set()`;
 * consumers see it through the InputLine contract. Edges are delivered
 * synchronously inside `set()`, exactly once per change of level.
 */
export class SimInputLine implements InputLine {
  private level: Level = false;
  private closed = false;
  private readonly listeners = new Set<EdgeListener>();

  constructor(
    readonly name: string,
    private readonly now: NowNs = hrtimeNow,
  ) {}

  read(): Level {
    this.assertOpen();
    return this.level;
  }

  watch(listener: EdgeListener): () => void {
    this.assertOpen();
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Control: drives the wire. A repeated level is not an edge and notifies nobody. */
  set(level: Level, atNs: bigint = this.now()): void {
    this.assertOpen();
    if (level === this.level) return;
    this.level = level;
    notify(this.listeners, level, atNs);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
  }
}

/**
 * A virtual output wire. Consumers drive it through the OutputLine contract;
 * tests observe it with `observe()`, which is called on each change of level
 * with the time of the write. `failNextWrites(n)` makes the next n writes
 * throw, to test how devices handle a failing line.
 */
export class SimOutputLine implements OutputLine {
  private level: Level = false;
  private closed = false;
  private failures = 0;
  private readonly observers = new Set<EdgeListener>();

  constructor(
    readonly name: string,
    private readonly now: NowNs = hrtimeNow,
  ) {}

  write(level: Level): void {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
    if (this.failures > 0) {
      this.failures--;
      throw new Error(`simulated write failure on ${this.name}`);
    }
    if (level === this.level) return;
    this.level = level;
    notify(this.observers, level, this.now());
  }

  read(): Level {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
    return this.level;
  }

  /** Control: calls `listener` on each change of the driven level. Survives close(). */
  observe(listener: EdgeListener): () => void {
    this.observers.add(listener);
    return () => {
      this.observers.delete(listener);
    };
  }

  /** Control: the next `count` writes throw a plain Error, as a broken driver would. */
  failNextWrites(count: number): void {
    this.failures = count;
  }

  /** Control: the level last driven, readable even after close(). */
  peek(): Level {
    return this.level;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
