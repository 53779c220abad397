import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { assembleClip } from './assemble.js';
import type { ClipMeta, ClipSink } from './clip-sink.js';
import { type ClosedSegment, type SegmentRing, selectSegments } from './ring.js';

export interface ClipFinished {
  id: string;
  reason: string;
  reasons: string[];
  triggerMs: number;
  startMs: number;
  endMs: number;
  bytes: number;
  sha256: string;
  truncated: boolean;
  /** Segments joined. */
  segments: number;
}

export interface ClipFailed {
  id: string;
  reasons: string[];
  error: string;
}

export interface ClipRecorderOptions {
  ring: SegmentRing;
  ringDir: string;
  sink: ClipSink;
  prerollMs: number;
  postrollMs: number;
  segmentMs: number;
  /** A clip never grows past this; a later trigger starts the next clip where it ends. */
  maxClipMs?: number;
  now?: () => number;
  /** Replaceable for tests. */
  assemble?: (paths: readonly string[], ringDir: string) => AsyncIterable<Uint8Array>;
}

interface Pending {
  id: string;
  reasons: string[];
  triggerMs: number;
  fromMs: number;
  toMs: number;
}

/**
 * Turns triggers into clips. A trigger asks for [at - preroll, at + postroll];
 * one that overlaps the window of a clip still collecting extends it (merge). A
 * clip is cut once the ring holds a closed segment past the window's end, or,
 * if the worker is down, after a grace period with what the ring has (truncated).
 */
export class ClipRecorder extends EventEmitter<{
  'clip-finished': [ClipFinished];
  'clip-failed': [ClipFailed];
}> {
  private readonly pending: Pending[] = [];
  private readonly inFlight = new Map<string, { fromMs: number; done: Promise<void> }>();
  private readonly now: () => number;
  private lastCutEndMs = 0;

  constructor(private readonly o: ClipRecorderOptions) {
    super();
    this.now = o.now ?? Date.now;
  }

  /** Registers a trigger; returns the id of the clip it belongs to (merged or new). */
  trigger(reason: string, atMs: number): string {
    let fromMs = Math.max(atMs - this.o.prerollMs, this.lastCutEndMs);
    const toMs = atMs + this.o.postrollMs;
    const last = this.pending[this.pending.length - 1];
    const maxClipMs = this.o.maxClipMs ?? 120_000;
    if (last !== undefined && fromMs <= last.toMs) {
      if (toMs - last.fromMs <= maxClipMs) {
        last.toMs = Math.max(last.toMs, toMs);
        last.reasons.push(reason);
        return last.id;
      }
      // Long enough: the next clip continues where this one ends.
      fromMs = last.toMs;
    }
    const id = `clip-${Math.round(atMs).toString(36)}-${randomBytes(4).toString('hex')}`;
    this.pending.push({ id, reasons: [reason], triggerMs: atMs, fromMs, toMs });
    return id;
  }

  /** The earliest time a pending or in-flight clip still needs; older segments may go. */
  keepFromMs(): number {
    let keep = Number.POSITIVE_INFINITY;
    for (const p of this.pending) keep = Math.min(keep, p.fromMs - 2 * this.o.segmentMs);
    for (const f of this.inFlight.values()) keep = Math.min(keep, f.fromMs - 2 * this.o.segmentMs);
    return keep;
  }

  get pendingCount(): number {
    return this.pending.length + this.inFlight.size;
  }

  /**
   * Cuts every clip whose window is covered. `workerDown` allows a cut with what
   * the ring holds once the window's end is more than `graceMs` past.
   */
  poll(workerDown = false, graceMs = 3 * this.o.segmentMs + 5000): void {
    const now = this.now();
    const closed = this.o.ring.closedSegments();
    while (this.pending.length > 0) {
      const p = this.pending[0] as Pending;
      const covered = closed.some((s) => s.endMs >= p.toMs);
      const giveUp = workerDown && now > p.toMs + graceMs;
      if (!covered && !giveUp) return;
      this.pending.shift();
      const segs = selectSegments(closed, p.fromMs, p.toMs);
      if (segs.length === 0) {
        const span =
          closed.length > 0 ? `${closed[0]?.startMs}..${closed[closed.length - 1]?.endMs}` : 'nothing';
        this.emit('clip-failed', {
          id: p.id,
          reasons: p.reasons,
          error: `no video in the ring for ${Math.round(p.fromMs)}..${Math.round(p.toMs)} (ring holds ${span})`,
        });
        continue;
      }
      // Truncated: the window's head or tail is missing by more than a segment (worker down, crash).
      const first = segs[0] as ClosedSegment;
      const last = segs[segs.length - 1] as ClosedSegment;
      const seg = this.o.segmentMs;
      this.cut(p, segs, !covered || first.startMs > p.fromMs + seg || last.endMs < p.toMs - seg);
    }
  }

  private cut(p: Pending, segs: ClosedSegment[], truncated: boolean): void {
    if (segs.length === 0) {
      this.emit('clip-failed', {
        id: p.id,
        reasons: p.reasons,
        error: 'no video in the ring for this window',
      });
      return;
    }
    const first = segs[0] as ClosedSegment;
    const last = segs[segs.length - 1] as ClosedSegment;
    this.lastCutEndMs = Math.max(this.lastCutEndMs, last.endMs);
    const meta: ClipMeta = {
      id: p.id,
      reason: p.reasons[0] ?? 'unknown',
      reasons: [...p.reasons],
      triggerMs: Math.round(p.triggerMs),
      requestedStartMs: Math.round(p.fromMs),
      requestedEndMs: Math.round(p.toMs),
      startMs: Math.round(first.startMs),
      endMs: Math.round(last.endMs),
      contentType: 'video/mp4',
      truncated,
    };
    const assemble = this.o.assemble ?? assembleClip;
    const done = (async () => {
      try {
        const r = await this.o.sink.writeClip(
          meta,
          assemble(
            segs.map((s) => s.path),
            this.o.ringDir,
          ),
        );
        this.emit('clip-finished', {
          id: r.id,
          reason: meta.reason,
          reasons: meta.reasons,
          triggerMs: meta.triggerMs,
          startMs: meta.startMs,
          endMs: meta.endMs,
          bytes: r.bytes,
          sha256: r.sha256,
          truncated,
          segments: segs.length,
        });
      } catch (err) {
        this.emit('clip-failed', { id: p.id, reasons: p.reasons, error: (err as Error).message });
      } finally {
        this.inFlight.delete(p.id);
      }
    })();
    this.inFlight.set(p.id, { fromMs: p.fromMs, done });
  }

  /** Waits for clips being written. Pending (uncut) clips are cut with what the ring has first. */
  async drain(): Promise<void> {
    this.poll(true, Number.NEGATIVE_INFINITY);
    await Promise.all([...this.inFlight.values()].map((f) => f.done));
  }
}
