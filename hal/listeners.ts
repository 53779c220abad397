import type { Logger } from '../common/logger.js';

/**
 * A set of listeners called synchronously, in subscription order. A listener
 * that throws is logged and skipped: it never breaks the device or the other
 * listeners. Unsubscribing during an emit takes effect from the next emit.
 */
export class ListenerSet<E> {
  private readonly listeners = new Set<(event: E) => void>();

  constructor(private readonly logger: Logger) {}

  add(listener: (event: E) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(event: E): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error(
          { err, event: String((event as { type?: unknown }).type) },
          'listener threw; ignored',
        );
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }

  get size(): number {
    return this.listeners.size;
  }
}
