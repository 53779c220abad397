import { type Clock, systemClock, type TimerHandle } from '../../common/clock.js';

/**
 * Work a press causes besides its event (the ChimeRang report, the LED, the
 * log line, a snapshot's encryption) starts this long after the press event
 * was handed to the MQTT client. The event's flight to the hub takes about
 * 1 ms on loopback; during it the broker and the hub need the CPU, and on a
 * two-core board whatever the daemon does then makes them wait their turn.
 */
export const AFTER_PRESS_DELAY_MS = 5;

/**
 * Work waiting for AFTER_PRESS_DELAY_MS after a press. `flush()` runs what
 * still waits at once, in the order it was queued: a service calls it when
 * it stops, while what the work needs (the outbox, the clip store) is open.
 */
export class AfterPressQueue {
  private readonly waiting = new Map<TimerHandle, () => void>();

  constructor(private readonly clock: Clock = systemClock) {}

  add(work: () => void): void {
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(timer);
      work();
    }, AFTER_PRESS_DELAY_MS);
    this.waiting.set(timer, work);
  }

  /** Work queued and not yet run. */
  get size(): number {
    return this.waiting.size;
  }

  flush(): void {
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const [timer, work] of waiting) {
      this.clock.clearTimeout(timer);
      work();
    }
  }
}
