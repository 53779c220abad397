import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { MASK_IMAGE_FILE } from './pipeline/mask-image.js';

/** One MPEG-TS segment of the pre-roll ring, with wall-clock times (ms). */
export interface Segment {
  runId: number;
  path: string;
  startMs: number;
  /** Set once the segment is closed (or its worker died: then the last time a frame was seen). */
  endMs?: number;
}

export type ClosedSegment = Segment & { endMs: number };

const SEGMENT_NAME = /^r\d{1,9}-\d{5,}\.ts$/;

/** The splitmuxsink location pattern for one worker run (each run gets its own names). */
export function segmentLocation(ringDir: string, runId: number): string {
  return path.join(ringDir, `r${runId}-%05d.ts`);
}

/** Where the worker's privacy masks read their black pixel (mask-image.ts). */
export function maskImagePath(ringDir: string): string {
  return path.join(ringDir, MASK_IMAGE_FILE);
}

/** True for file names the ring writes (used to clear stale segments at start). */
export const isSegmentName = (name: string): boolean => SEGMENT_NAME.test(name);

/**
 * Index of the segments in the ring directory, fed by the worker's
 * fragment-opened/closed messages. Paths are checked to be segment files directly
 * inside the ring directory before they are indexed, so a bad message can never make
 * the control plane delete anything else.
 */
export class SegmentRing {
  private readonly segments = new Map<string, Segment>();
  private readonly dir: string;

  constructor(
    ringDir: string,
    private readonly remove: (p: string) => Promise<void> = (p) => rm(p, { force: true }),
    private readonly sizeOf: (p: string) => Promise<number> = (p) =>
      stat(p).then(
        (st) => st.size,
        () => 0,
      ),
  ) {
    this.dir = path.resolve(ringDir);
  }

  private valid(p: string): boolean {
    const abs = path.resolve(p);
    return path.dirname(abs) === this.dir && isSegmentName(path.basename(abs));
  }

  opened(runId: number, p: string, startMs: number): boolean {
    if (!this.valid(p)) return false;
    this.segments.set(path.resolve(p), { runId, path: path.resolve(p), startMs });
    return true;
  }

  closed(runId: number, p: string, endMs: number): boolean {
    const s = this.segments.get(path.resolve(p));
    if (s === undefined || s.runId !== runId) return false;
    s.endMs = Math.max(endMs, s.startMs);
    return true;
  }

  /**
   * A worker run ended. Its open segment holds at most what filesink had flushed
   * before the crash (often nothing: splitmuxsink writes a GOP late and filesink
   * buffers): kept, ending at the last frame seen, if it has bytes; dropped if not.
   */
  async runEnded(runId: number, lastSeenMs: number): Promise<void> {
    for (const s of [...this.segments.values()]) {
      if (s.runId !== runId || s.endMs !== undefined) continue;
      const size = await this.sizeOf(s.path);
      if (size > 0 && lastSeenMs > s.startMs) s.endMs = lastSeenMs;
      else this.drop(s);
    }
  }

  /** Closed segments ordered by start time. */
  closedSegments(): ClosedSegment[] {
    return [...this.segments.values()]
      .filter((s): s is ClosedSegment => s.endMs !== undefined)
      .sort((a, b) => a.startMs - b.startMs);
  }

  get size(): number {
    return this.segments.size;
  }

  private drop(s: Segment): void {
    this.segments.delete(s.path);
    this.remove(s.path).catch(() => {});
  }

  /** Deletes closed segments that ended before `keepFromMs`. Returns how many. */
  prune(keepFromMs: number): number {
    let n = 0;
    for (const s of [...this.segments.values()]) {
      if (s.endMs !== undefined && s.endMs < keepFromMs) {
        this.drop(s);
        n += 1;
      }
    }
    return n;
  }

  /** Forgets and deletes everything (service stop: plaintext does not outlive the service). */
  async clear(): Promise<void> {
    const all = [...this.segments.values()];
    this.segments.clear();
    await Promise.all(all.map((s) => this.remove(s.path).catch(() => {})));
  }
}

/**
 * Picks the segments of one clip. The ring can only cut at segment boundaries, so
 * the first segment is the one whose start is nearest `fromMs` and the last the one
 * whose end is nearest `toMs`: the clip's duration is then within one segment of
 * the window, and its first frame at most half a segment after `fromMs`. Only
 * segments of one worker run are joined (timestamps restart with each run): the run
 * holding the most of the window.
 */
export function selectSegments(all: readonly ClosedSegment[], fromMs: number, toMs: number): ClosedSegment[] {
  const byRun = new Map<number, ClosedSegment[]>();
  for (const s of all) {
    if (s.endMs <= fromMs - 1 || s.startMs >= toMs + 1) continue;
    const list = byRun.get(s.runId) ?? [];
    list.push(s);
    byRun.set(s.runId, list);
  }
  let best: ClosedSegment[] = [];
  let bestOverlap = -1;
  for (const list of byRun.values()) {
    const overlap = list.reduce(
      (sum, s) => sum + Math.max(0, Math.min(s.endMs, toMs) - Math.max(s.startMs, fromMs)),
      0,
    );
    if (overlap > bestOverlap) {
      best = list;
      bestOverlap = overlap;
    }
  }
  if (best.length === 0) return [];
  best.sort((a, b) => a.startMs - b.startMs);
  let first = 0;
  for (let k = 1; k < best.length; k++) {
    const s = best[k] as ClosedSegment;
    if (Math.abs(s.startMs - fromMs) < Math.abs((best[first] as ClosedSegment).startMs - fromMs)) first = k;
  }
  let last = first;
  for (let k = first + 1; k < best.length; k++) {
    const s = best[k] as ClosedSegment;
    if (Math.abs(s.endMs - toMs) <= Math.abs((best[last] as ClosedSegment).endMs - toMs)) last = k;
  }
  return best.slice(first, last + 1);
}
