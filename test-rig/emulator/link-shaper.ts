import { type Clock, nsToMs, systemClock, type TimerHandle } from '../../common/clock.js';
import { type Random, seededRandom } from './rng.js';

/** How the emulated link misbehaves; every fraction is per byte (delay: per chunk), 0..1. */
export interface LinkFaults {
  /** Added to every chunk, in ms. */
  latencyMs?: number;
  /** A uniform extra 0..jitterMs per chunk. Order is kept: a serial line never reorders. */
  jitterMs?: number;
  /** Fraction of bytes silently lost. */
  dropRate?: number;
  /** Fraction of bytes with one bit flipped. */
  corruptRate?: number;
  /** Fraction of chunks held back a further `delayMs` (and everything behind them). */
  delayRate?: number;
  delayMs?: number;
  /** PRNG seed; default 1. */
  seed?: number;
}

export interface ShaperStats {
  bytes: number;
  dropped: number;
  corrupted: number;
  delayed: number;
}

const checkFraction = (name: string, v: number | undefined): number => {
  const x = v ?? 0;
  if (!Number.isFinite(x) || x < 0 || x > 1) throw new TypeError(`${name} must be within 0..1, got ${v}`);
  return x;
};
const checkMs = (name: string, v: number | undefined): number => {
  const x = v ?? 0;
  if (!Number.isFinite(x) || x < 0 || x > 60_000)
    throw new TypeError(`${name} must be 0..60000 ms, got ${v}`);
  return x;
};

/**
 * One direction of a link: bytes go in, come out later (latency, jitter,
 * delays) and damaged (drops, bit flips), in their original order.
 */
export class LinkShaper {
  readonly stats: ShaperStats = { bytes: 0, dropped: 0, corrupted: 0, delayed: 0 };
  private readonly random: Random;
  private readonly f: Required<Omit<LinkFaults, 'seed'>>;
  private lastDueMs = 0;
  private readonly queue: Array<{ due: number; bytes: Uint8Array }> = [];
  private timer: TimerHandle | undefined;

  constructor(
    faults: LinkFaults,
    private readonly deliver: (bytes: Uint8Array) => void,
    private readonly clock: Clock = systemClock,
  ) {
    this.f = {
      latencyMs: checkMs('latencyMs', faults.latencyMs),
      jitterMs: checkMs('jitterMs', faults.jitterMs),
      dropRate: checkFraction('dropRate', faults.dropRate),
      corruptRate: checkFraction('corruptRate', faults.corruptRate),
      delayRate: checkFraction('delayRate', faults.delayRate),
      delayMs: checkMs('delayMs', faults.delayMs),
    };
    this.random = seededRandom(faults.seed ?? 1);
  }

  /** True when the shaper changes nothing (bytes pass through synchronously). */
  get transparent(): boolean {
    return Object.values(this.f).every((v) => v === 0);
  }

  push(chunk: Uint8Array): void {
    this.stats.bytes += chunk.length;
    if (this.transparent) {
      this.deliver(chunk);
      return;
    }
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.f.dropRate > 0 && this.random() < this.f.dropRate) {
        this.stats.dropped++;
        continue;
      }
      if (this.f.corruptRate > 0 && this.random() < this.f.corruptRate) {
        this.stats.corrupted++;
        out.push(byte ^ (1 << Math.floor(this.random() * 8)));
        continue;
      }
      out.push(byte);
    }
    let waitMs = this.f.latencyMs + this.random() * this.f.jitterMs;
    if (this.f.delayRate > 0 && this.random() < this.f.delayRate) {
      this.stats.delayed++;
      waitMs += this.f.delayMs;
    }
    const due = Math.max(this.nowMs() + waitMs, this.lastDueMs);
    this.lastDueMs = due;
    if (out.length === 0) return;
    if (waitMs === 0 && this.queue.length === 0) {
      this.deliver(Uint8Array.from(out));
      return;
    }
    this.queue.push({ due, bytes: Uint8Array.from(out) });
    this.schedule();
  }

  /** One timer drains the queue in order, so chunks never overtake each other. */
  private schedule(): void {
    const head = this.queue[0];
    if (this.timer !== undefined || head === undefined) return;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        const now = this.nowMs();
        while (this.queue[0] !== undefined && this.queue[0].due <= now + 0.5) {
          const item = this.queue.shift();
          if (item) this.deliver(item.bytes);
        }
        this.schedule();
      },
      Math.max(0, head.due - this.nowMs()),
    );
  }

  private nowMs(): number {
    return nsToMs(this.clock.nowNs());
  }

  /** Drops whatever is still in flight. */
  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}
