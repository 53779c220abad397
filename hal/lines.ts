/**
 * Raw line contracts. Backends (sim, linux sysfs) implement only these;
 * device behaviour (debounce, chime safety, blinking) is shared code on top,
 * so it is identical on every backend.
 */

/**
 * Logical level AFTER active-low inversion: `true` = asserted (button
 * pressed, chime relay energised, LED lit), whatever the electrical polarity.
 */
export type Level = boolean;

/** Called on every edge the backend observes. */
export type EdgeListener = (level: Level, atNs: bigint) => void;

export interface InputLine {
  /** Stable name for logs and errors, e.g. `button` or `gpiochip512:17`. */
  readonly name: string;
  /**
   * The current logical level, read synchronously.
   * Caveat: a bouncing contact may read either level; use a debouncer.
   * Throws HalError (`closed`, `io`).
   */
  read(): Level;
  /**
   * Calls `listener` on each edge with the new level and the time the backend
   * saw it, as `process.hrtime.bigint()` nanoseconds (CLOCK_MONOTONIC on Linux).
   * Caveats: edges faster than the backend's interrupt latency may be merged
   * (two edges can arrive as one, or the same level twice); the timestamp is
   * when userspace noticed, not when the voltage crossed the threshold
   * (typically tens of microseconds to a few milliseconds later, more under load).
   * Listeners run synchronously on the event loop and must not throw.
   * Returns a function that stops delivery; calling it twice is harmless.
   */
  watch(listener: EdgeListener): () => void;
  /** Stops all watchers and releases the line. Idempotent. Later calls throw HalError('closed'). */
  close(): Promise<void>;
}

export interface OutputLine {
  /** Stable name for logs and errors, e.g. `chime` or `gpiochip512:27`. */
  readonly name: string;
  /**
   * Drives the line to `level`, synchronously and fast: the chime path calls it
   * between a button edge and the ring. Caveat: the electrical state may lag
   * (a relay closes a few milliseconds later; an open-drain line with no
   * pull-up may never actually go high). Throws HalError (`closed`, `io`).
   */
  write(level: Level): void;
  /**
   * The level last driven (as the kernel reports it on linux), not a
   * measurement of the wire: a shorted or overloaded output reads as driven.
   */
  read(): Level;
  /**
   * Releases the line. It does NOT drive it off first: devices that own a
   * line (the chime driver) do that themselves before closing. Idempotent.
   */
  close(): Promise<void>;
}
