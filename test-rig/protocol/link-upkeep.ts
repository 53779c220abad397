import { Backoff, type BackoffOptions } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';

/**
 * Retries `attempt` with exponential backoff and jitter until it succeeds or
 * `stop()` is called. At most one loop runs at a time; `start()` while
 * running does nothing.
 */
export class Reconnector {
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private running = false;
  private stopped = false;

  constructor(
    options: BackoffOptions,
    private readonly attempt: () => Promise<void>,
    private readonly logger: Logger,
  ) {
    this.backoff = new Backoff(options);
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
    });
  }

  /** Ends the loop after the current attempt; a pending wait ends at once. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
  }

  get active(): boolean {
    return this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const delay = this.backoff.next();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, delay);
      });
      if (this.stopped) return;
      try {
        await this.attempt();
        this.backoff.reset();
        this.logger.info({ attempts: this.backoff.attempts }, 'rig reconnected');
        return;
      } catch (err) {
        this.logger.warn({ err, attempt: this.backoff.attempts, delayMs: delay }, 'rig reconnect failed');
      }
    }
  }
}

/** Calls `beat` every `everyMs` until stopped (an unref'd timer: it never keeps the process alive). */
export class Keepalive {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly everyMs: number,
    private readonly beat: () => void,
  ) {}

  start(): void {
    this.stop();
    if (this.everyMs <= 0) return;
    this.timer = setInterval(this.beat, this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
