import type { Logger } from '../../common/logger.js';

export interface OutboxEntry {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly retain: boolean;
}

/**
 * Signed events waiting for the broker's acknowledgement, in order. Bounded:
 * when full, the oldest entry is dropped and counted. An entry leaves only
 * through `ack()`, after the broker acknowledged it.
 */
export class Outbox {
  private readonly entries: OutboxEntry[] = [];
  private droppedCount = 0;
  private readonly pushListeners = new Set<() => void>();

  constructor(
    private readonly max: number,
    private readonly logger: Logger,
  ) {
    if (!Number.isInteger(max) || max < 1)
      throw new TypeError(`outbox: max must be a positive integer, got ${max}`);
  }

  push(entry: OutboxEntry): void {
    if (this.entries.length >= this.max) {
      this.entries.shift();
      this.droppedCount += 1;
      this.logger.warn(
        { dropped: this.droppedCount, max: this.max },
        'outbox full: dropped the oldest event',
      );
    }
    this.entries.push(entry);
    for (const listener of this.pushListeners) listener();
  }

  /** Calls `listener` synchronously after every push, so a sender can go at once. */
  onPush(listener: () => void): () => void {
    this.pushListeners.add(listener);
    return () => this.pushListeners.delete(listener);
  }

  /** The oldest unacknowledged entry. */
  head(): OutboxEntry | undefined {
    return this.entries[0];
  }

  /** Removes `entry` if it is still the head (it may have been dropped meanwhile). */
  ack(entry: OutboxEntry): void {
    if (this.entries[0] === entry) this.entries.shift();
  }

  get depth(): number {
    return this.entries.length;
  }

  get dropped(): number {
    return this.droppedCount;
  }
}
