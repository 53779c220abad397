import type { Logger } from '../../common/logger.js';
import { MAX_FRAME_SIDE, type MotionConfig, type MotionZone } from './config.js';

/** One low-resolution grey frame (GStreamer `video/x-raw,format=GRAY8`). */
export interface GrayFrame {
  width: number;
  height: number;
  /** Bytes from the start of one row to the next; defaults to `width`. GStreamer pads rows to 4 bytes. */
  stride?: number;
  /** Capture time in milliseconds (monotonic or wall clock, but never decreasing). */
  timestampMs: number;
  data: Uint8Array;
}

export type MotionEvent =
  | { type: 'motion-start'; zone: string; atMs: number; area: number }
  | { type: 'motion-end'; zone: string; atMs: number; durationMs: number };

export type MotionFrameErrorKind =
  | 'invalid-size'
  | 'frame-too-large'
  | 'invalid-stride'
  | 'invalid-length'
  | 'invalid-timestamp';

/** A frame the detector refuses. The detector's state is unchanged by a refused frame. */
export class MotionFrameError extends Error {
  override readonly name = 'MotionFrameError';
  constructor(
    readonly kind: MotionFrameErrorKind,
    message: string,
  ) {
    super(message);
  }
}

const NO_EVENTS: readonly MotionEvent[] = Object.freeze([]);

/** Grey levels are kept multiplied by 9 (the sum of a 3x3 box) so blurred and raw paths share units. */
const SCALE = 9;

/**
 * Frame differencing against a running-average background, per zone, with hysteresis and a
 * cooldown. Pure TypeScript, synchronous, no I/O.
 *
 * Per frame: optional 3x3 box blur (two separable passes), then for every pixel
 * |frame - background| > sensitivity marks it changed and counts it for each zone the pixel
 * belongs to (a 16-bit zone mask per pixel, computed once per resolution), then the background
 * moves towards the frame by `backgroundAlpha`. All buffers are allocated when the resolution
 * changes, never per frame.
 */
export class MotionDetector {
  private readonly zones: readonly MotionZone[];
  private width = 0;
  private height = 0;
  private haveBackground = false;
  private lastTs = Number.NEGATIVE_INFINITY;

  // Per-resolution buffers.
  private rowSum = new Uint16Array(0);
  private cur = new Uint16Array(0);
  private background = new Float32Array(0);
  private zoneBits = new Uint16Array(0);

  // Per-zone state.
  private readonly zonePixels: Int32Array;
  private readonly changed: Int32Array;
  private readonly active: Uint8Array;
  private readonly overRun: Int32Array;
  private readonly underRun: Int32Array;
  private readonly startedAt: Float64Array;
  private readonly endedAt: Float64Array;

  constructor(
    private readonly config: MotionConfig,
    private readonly logger?: Logger,
  ) {
    this.zones = config.zones;
    const n = this.zones.length;
    this.zonePixels = new Int32Array(n);
    this.changed = new Int32Array(n);
    this.active = new Uint8Array(n);
    this.overRun = new Int32Array(n);
    this.underRun = new Int32Array(n);
    this.startedAt = new Float64Array(n);
    this.endedAt = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  }

  /** Zones currently in motion. */
  activeZones(): string[] {
    return this.zones.filter((_, i) => this.active[i] === 1).map((z) => z.name);
  }

  /**
   * Feeds one frame. Returns the events it caused (usually none). Throws only
   * `MotionFrameError`, before touching any state, for a frame it refuses.
   */
  process(frame: GrayFrame): readonly MotionEvent[] {
    const stride = this.validate(frame);
    const { width: w, height: h, data, timestampMs: ts } = frame;
    let events: MotionEvent[] | undefined;
    if (w !== this.width || h !== this.height) {
      events = this.endAll(ts);
      this.resize(w, h);
    }
    this.lastTs = ts;

    this.load(data, stride);
    const cur = this.cur;
    const bg = this.background;
    const n = w * h;
    if (!this.haveBackground) {
      for (let i = 0; i < n; i++) bg[i] = cur[i] as number;
      this.haveBackground = true;
      return events ?? NO_EVENTS;
    }

    const changed = this.changed;
    changed.fill(0);
    const bits = this.zoneBits;
    const thr = this.config.sensitivity * SCALE;
    const alpha = this.config.backgroundAlpha;
    for (let i = 0; i < n; i++) {
      const b = bg[i] as number;
      const d = (cur[i] as number) - b;
      if (d > thr || d < -thr) {
        let m = bits[i] as number;
        while (m !== 0) {
          const z = 31 - Math.clz32(m);
          changed[z] = (changed[z] as number) + 1;
          m ^= 1 << z;
        }
      }
      bg[i] = b + alpha * d;
    }

    const cfg = this.config;
    for (let z = 0; z < this.zones.length; z++) {
      const total = this.zonePixels[z] as number;
      if (total === 0) continue;
      const area = (changed[z] as number) / total;
      const moving = area >= cfg.minArea;
      const name = (this.zones[z] as MotionZone).name;
      if (this.active[z] === 0) {
        this.overRun[z] = moving ? (this.overRun[z] as number) + 1 : 0;
        if (
          (this.overRun[z] as number) >= cfg.startFrames &&
          ts - (this.endedAt[z] as number) >= cfg.cooldownMs
        ) {
          this.active[z] = 1;
          this.underRun[z] = 0;
          this.startedAt[z] = ts;
          events ??= [];
          events.push({ type: 'motion-start', zone: name, atMs: ts, area });
        }
      } else {
        this.underRun[z] = moving ? 0 : (this.underRun[z] as number) + 1;
        if ((this.underRun[z] as number) >= cfg.stopFrames) {
          events ??= [];
          events.push(this.end(z, ts));
        }
      }
    }
    return events ?? NO_EVENTS;
  }

  /**
   * Starts afresh: ends every active zone at `atMs` (default: the last frame's time), forgets the
   * background (the next frame becomes it), the cooldowns and the last timestamp (so the next
   * frame may be earlier, e.g. after the wall clock was set back). For a camera restart.
   */
  reset(atMs?: number): readonly MotionEvent[] {
    const at = atMs ?? (Number.isFinite(this.lastTs) ? this.lastTs : 0);
    const events = this.endAll(at);
    this.haveBackground = false;
    this.lastTs = Number.NEGATIVE_INFINITY;
    this.overRun.fill(0);
    this.underRun.fill(0);
    this.endedAt.fill(Number.NEGATIVE_INFINITY);
    return events;
  }

  private end(z: number, ts: number): MotionEvent {
    this.active[z] = 0;
    this.overRun[z] = 0;
    this.underRun[z] = 0;
    this.endedAt[z] = ts;
    const name = (this.zones[z] as MotionZone).name;
    return { type: 'motion-end', zone: name, atMs: ts, durationMs: ts - (this.startedAt[z] as number) };
  }

  private endAll(ts: number): MotionEvent[] {
    const out: MotionEvent[] = [];
    for (let z = 0; z < this.zones.length; z++) if (this.active[z] === 1) out.push(this.end(z, ts));
    return out;
  }

  private validate(frame: GrayFrame): number {
    if (typeof frame !== 'object' || frame === null) {
      throw new MotionFrameError('invalid-size', 'not a frame');
    }
    const { width: w, height: h } = frame;
    if (!Number.isSafeInteger(w) || !Number.isSafeInteger(h) || w < 1 || h < 1) {
      throw new MotionFrameError(
        'invalid-size',
        `frame size ${String(w)}x${String(h)} is not positive integers`,
      );
    }
    if (w > MAX_FRAME_SIDE || h > MAX_FRAME_SIDE || w * h > this.config.maxPixels) {
      throw new MotionFrameError(
        'frame-too-large',
        `frame ${w}x${h} exceeds the cap (${this.config.maxPixels} pixels, ${MAX_FRAME_SIDE} per side)`,
      );
    }
    const stride = frame.stride ?? w;
    if (!Number.isSafeInteger(stride) || stride < w || stride > w + 64) {
      throw new MotionFrameError('invalid-stride', `stride ${String(stride)} for width ${w}`);
    }
    const data = frame.data;
    if (!(data instanceof Uint8Array)) {
      throw new MotionFrameError('invalid-length', 'frame data is not a Uint8Array');
    }
    const min = stride * (h - 1) + w;
    if (data.length < min || data.length > stride * h) {
      throw new MotionFrameError(
        'invalid-length',
        `frame data is ${data.length} bytes, expected ${min}..${stride * h} for ${w}x${h} stride ${stride}`,
      );
    }
    const ts = frame.timestampMs;
    if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < this.lastTs) {
      throw new MotionFrameError(
        'invalid-timestamp',
        `timestamp ${String(ts)} is not finite or goes back (last ${this.lastTs})`,
      );
    }
    return stride;
  }

  private resize(w: number, h: number): void {
    const n = w * h;
    this.width = w;
    this.height = h;
    this.rowSum = new Uint16Array(n);
    this.cur = new Uint16Array(n);
    this.background = new Float32Array(n);
    this.zoneBits = new Uint16Array(n);
    this.haveBackground = false;
    this.overRun.fill(0);
    this.underRun.fill(0);
    for (let z = 0; z < this.zones.length; z++) {
      this.zonePixels[z] = rasterise(this.zones[z] as MotionZone, w, h, this.zoneBits, 1 << z);
      if (this.zonePixels[z] === 0) {
        this.logger?.warn(
          { zone: (this.zones[z] as MotionZone).name, width: w, height: h },
          'motion zone covers no pixel at this resolution; it will never trigger',
        );
      }
    }
  }

  /** Copies the frame into `cur` (grey x 9), through a 3x3 box blur when configured. */
  private load(p: Uint8Array, stride: number): void {
    const w = this.width;
    const h = this.height;
    const cur = this.cur;
    if (!this.config.blur) {
      for (let y = 0; y < h; y++) {
        const b = y * stride;
        const o = y * w;
        for (let x = 0; x < w; x++) cur[o + x] = (p[b + x] as number) * SCALE;
      }
      return;
    }
    const rs = this.rowSum;
    for (let y = 0; y < h; y++) {
      const b = y * stride;
      const o = y * w;
      if (w === 1) {
        rs[o] = (p[b] as number) * 3;
        continue;
      }
      rs[o] = 2 * (p[b] as number) + (p[b + 1] as number);
      for (let x = 1; x < w - 1; x++) {
        rs[o + x] = (p[b + x - 1] as number) + (p[b + x] as number) + (p[b + x + 1] as number);
      }
      rs[o + w - 1] = (p[b + w - 2] as number) + 2 * (p[b + w - 1] as number);
    }
    for (let y = 0; y < h; y++) {
      const up = (y === 0 ? 0 : y - 1) * w;
      const mid = y * w;
      const dn = (y === h - 1 ? y : y + 1) * w;
      for (let x = 0; x < w; x++) {
        cur[mid + x] = (rs[up + x] as number) + (rs[mid + x] as number) + (rs[dn + x] as number);
      }
    }
  }
}

/**
 * Sets `bit` in `mask` for every pixel whose centre lies inside the zone; returns the count.
 * Rectangles are half-open [x, x + w); polygons use the even-odd rule, one scanline per row.
 */
export function rasterise(zone: MotionZone, w: number, h: number, mask: Uint16Array, bit: number): number {
  let count = 0;
  const fill = (y: number, xa: number, xb: number): void => {
    // Pixels whose centre (x + 0.5) / w lies in [xa, xb).
    const from = Math.max(0, Math.ceil(xa * w - 0.5));
    const to = Math.min(w - 1, Math.ceil(xb * w - 0.5) - 1);
    for (let x = from; x <= to; x++) {
      const i = y * w + x;
      if (((mask[i] as number) & bit) === 0) {
        mask[i] = (mask[i] as number) | bit;
        count++;
      }
    }
  };
  if (zone.kind === 'rect') {
    for (let y = 0; y < h; y++) {
      const yc = (y + 0.5) / h;
      if (yc >= zone.y && yc < zone.y + zone.h) fill(y, zone.x, zone.x + zone.w);
    }
    return count;
  }
  const pts = zone.points;
  const xs: number[] = [];
  for (let y = 0; y < h; y++) {
    const yc = (y + 0.5) / h;
    xs.length = 0;
    for (let i = 0; i < pts.length; i++) {
      const [x1, y1] = pts[i] as [number, number];
      const [x2, y2] = pts[(i + 1) % pts.length] as [number, number];
      if ((y1 <= yc && yc < y2) || (y2 <= yc && yc < y1)) {
        xs.push(x1 + ((yc - y1) * (x2 - x1)) / (y2 - y1));
      }
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) fill(y, xs[k] as number, xs[k + 1] as number);
  }
  return count;
}
