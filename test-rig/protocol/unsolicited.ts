import type { Logger } from '../../common/logger.js';
import type { ChimeEdge } from './driver-support.js';
import { isRigError } from './errors.js';
import type { RigMessage } from './message-types.js';

/**
 * Listeners of one unsolicited stream (chime edges, console bytes) and the
 * switch on the rig that starts and stops it: on with the first listener, off
 * after the last, on again after a reconnect. A throwing listener is logged
 * and does not stop the others.
 */
export class UnsolicitedListeners<T> {
  private readonly listeners = new Set<(value: T) => void>();
  private setter: ((on: boolean) => Promise<void>) | undefined;

  constructor(
    private readonly stream: string,
    private readonly logger: () => Logger,
  ) {}

  /** Adds `listener`; resolves once the rig acknowledged the stream is on. */
  async add(listener: (value: T) => void, set: (on: boolean) => Promise<void>): Promise<() => Promise<void>> {
    this.setter = set;
    const first = this.listeners.size === 0;
    this.listeners.add(listener);
    if (first) {
      try {
        await set(true);
      } catch (err) {
        this.listeners.delete(listener);
        throw err;
      }
    }
    let removed = false;
    return async () => {
      if (removed || !this.listeners.delete(listener)) return;
      removed = true;
      if (this.listeners.size > 0) return;
      try {
        await set(false);
      } catch (err) {
        // Nothing to switch off on a rig that is gone; anything else is a real failure.
        if (!isRigError(err, 'disconnected') && !isRigError(err, 'closed')) throw err;
      }
    };
  }

  emit(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (err) {
        this.logger().error({ err, stream: this.stream }, 'rig listener threw');
      }
    }
  }

  /** After a reconnect: switches the stream back on when anyone listens. */
  async resume(): Promise<void> {
    if (this.listeners.size > 0 && this.setter !== undefined) await this.setter(true);
  }

  get size(): number {
    return this.listeners.size;
  }
}

/** Routes an unsolicited message (request id 0) to its listeners; false when it is not one. */
export function routeUnsolicited(
  m: RigMessage,
  chime: UnsolicitedListeners<ChimeEdge>,
  consoleOut: UnsolicitedListeners<Uint8Array>,
): boolean {
  if (m.type === 'CHIME_EDGE') chime.emit({ level: m.level, tUs: m.tUs });
  else if (m.type === 'CONSOLE_DATA') consoleOut.emit(m.data);
  else return false;
  return true;
}
