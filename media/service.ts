/**
 * MediaService: the control plane's handle on the camera.
 *
 *   const media = new MediaService({ config, sink, analyser, logger });
 *   await media.start();            // preflight (elements, encoder), worker up; rejects with
 *                                   // MediaConfigError on a configuration GStreamer cannot run
 *   const clipId = media.trigger('press', Date.now());   // synchronous, never throws, never waits
 *   const snap = media.latestSnapshot();                 // { id, tsMs, bytes } | undefined
 *   const fresh = await media.snapshotNow();             // at most 1 s old, or rejects after 2 s
 *   media.on('clip-finished', (c) => ...);  // { id, reason, reasons, triggerMs, startMs, endMs, bytes, sha256, truncated, segments }
 *   media.on('clip-failed', (c) => ...);    // { id, reasons, error }
 *   media.on('health', (h) => ...);         // MediaHealth: worker-started, pipeline-up/down, restart-scheduled, camera-error, ...
 *   media.on('motion-frame', (f) => ...);   // GrayFrame, also handed to options.analyser.onFrame
 *   await media.stop();             // cuts pending clips with what the ring holds, stops the worker, empties the ring
 *
 * The GStreamer pipeline runs in a supervised child process (media/worker/main.ts);
 * this side keeps the segment index, cuts clips (a short gst-launch remux per
 * clip) and hands them to the ClipSink (the encrypted store). Nothing here blocks
 * the event loop: frames and snapshots arrive as IPC messages.
 */
import { EventEmitter } from 'node:events';
import { readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { ClipSink } from './clip-sink.js';
import { type ClipFailed, type ClipFinished, ClipRecorder } from './clips.js';
import type { MediaConfig } from './config.js';
import type { FrameAnalyser, GrayFrame, Snapshot } from './frame.js';
import type { WorkerMessage } from './ipc.js';
import { buildMediaGraph } from './pipeline/build.js';
import { type ElementCheck, gstInspectCheck } from './pipeline/gst-element-check.js';
import { blackPixelPng, MASK_IMAGE_FILE } from './pipeline/mask-image.js';
import { checkElements, chooseEncoder, MediaConfigError } from './pipeline/preflight.js';
import { isSegmentName, maskImagePath, SegmentRing, segmentLocation } from './ring.js';
import { prepareRingDir } from './ring-dir.js';
import { type MediaHealth, MediaSupervisor } from './supervisor.js';

export type { ClipFailed, ClipFinished } from './clips.js';
export { MediaConfigError } from './pipeline/preflight.js';
export type { MediaHealth } from './supervisor.js';

export interface MediaServiceOptions {
  config: MediaConfig;
  sink: ClipSink;
  analyser?: FrameAnalyser;
  logger?: Logger;
  elementCheck?: ElementCheck;
  now?: () => number;
  backoff?: { minMs: number; maxMs: number };
  stableMs?: number;
  /** How long start() waits for the first sign of the pipeline (up or an error). */
  startTimeoutMs?: number;
  /** The supervisor's timers; default the system clock. */
  clock?: Clock;
}

const SNAPSHOT_MAX_AGE_MS = 1000;
const SNAPSHOT_WAIT_MS = 2000;

export class MediaService extends EventEmitter<{
  'clip-finished': [ClipFinished];
  'clip-failed': [ClipFailed];
  health: [MediaHealth];
  'motion-frame': [GrayFrame];
  snapshot: [Snapshot];
}> {
  private supervisor: MediaSupervisor | undefined;
  private ring: SegmentRing | undefined;
  private clips: ClipRecorder | undefined;
  private snapshot: Snapshot | undefined;
  private snapshotSeq = 0;
  private lastSeenMs = 0;
  private prerollAnnounced: number | undefined;
  private workerUp = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private lit = false;
  private readonly now: () => number;

  constructor(private readonly options: MediaServiceOptions) {
    super();
    this.now = options.now ?? Date.now;
  }

  get isUp(): boolean {
    return this.workerUp;
  }

  get workerPid(): number | undefined {
    return this.supervisor?.pid;
  }

  get restarts(): number {
    return this.supervisor?.restarts ?? 0;
  }

  async start(): Promise<void> {
    if (this.supervisor !== undefined) return;
    const c = this.options.config;
    const check = this.options.elementCheck ?? gstInspectCheck;
    const encoder = await chooseEncoder(c, check);
    const ringDir = path.resolve(c.ringDir);
    await checkElements(
      buildMediaGraph(c, {
        encoder,
        segmentLocation: segmentLocation(ringDir, 0),
        maskImage: maskImagePath(ringDir),
        sinks: 'app',
      }),
      check,
    );
    await prepareRingDir(ringDir, {
      allowPersistent: c.ringOnPersistentStorage,
      ...(this.options.logger ? { logger: this.options.logger } : {}),
    });
    // Segments of an earlier life of the daemon: nothing refers to them any more.
    await removeRingFiles(ringDir);
    // Written whether or not masks are configured, so the worker's start never depends on it.
    await writeFile(maskImagePath(ringDir), blackPixelPng(), { mode: 0o600 });
    const ring = new SegmentRing(ringDir);
    this.ring = ring;
    const segmentMs = c.segmentS * 1000;
    const clips = new ClipRecorder({
      ring,
      ringDir,
      sink: this.options.sink,
      prerollMs: c.prerollS * 1000,
      postrollMs: c.postrollS * 1000,
      segmentMs,
      maxClipMs: c.maxClipS * 1000,
      now: this.now,
    });
    this.clips = clips;
    clips.on('clip-finished', (e) => this.emit('clip-finished', e));
    clips.on('clip-failed', (e) => {
      this.options.logger?.warn({ clip: e.id, err: e.error }, 'clip failed');
      this.emit('clip-failed', e);
    });
    const sup = new MediaSupervisor({
      startMessage: (runId) => ({
        type: 'start',
        runId,
        config: c,
        encoder,
        segmentLocation: segmentLocation(ringDir, runId),
        maskImage: maskImagePath(ringDir),
        light: this.lit,
      }),
      ...(this.options.backoff ? { backoff: this.options.backoff } : {}),
      ...(this.options.stableMs !== undefined ? { stableMs: this.options.stableMs } : {}),
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    this.supervisor = sup;
    const first = new Promise<void>((resolve, reject) => {
      const onHealth = (h: MediaHealth): void => {
        if (h.type === 'config-error') {
          sup.off('health', onHealth);
          reject(new MediaConfigError(h.message));
        } else if (h.type === 'pipeline-up' || h.type === 'camera-error' || h.type === 'pipeline-error') {
          sup.off('health', onHealth);
          resolve();
        }
      };
      sup.on('health', onHealth);
      setTimeout(resolve, this.options.startTimeoutMs ?? 15_000).unref();
    });
    sup.on('health', (h) => this.onHealth(h));
    sup.on('message', (m, runId) => this.onMessage(m, runId));
    sup.start();
    // While the worker is down no segment-closed message comes: a slow tick cuts clips anyway.
    this.pollTimer = setInterval(() => this.clips?.poll(!this.workerUp), 1000);
    try {
      await first;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private onHealth(h: MediaHealth): void {
    const log = this.options.logger;
    switch (h.type) {
      case 'pipeline-up':
        this.workerUp = true;
        log?.info({ run: h.runId }, 'media pipeline up');
        break;
      case 'worker-exit':
        this.workerUp = false;
        void this.ring?.runEnded(h.runId, this.lastSeenMs);
        log?.warn({ run: h.runId, code: h.code, signal: h.signal }, 'media worker exited');
        break;
      case 'camera-error':
      case 'pipeline-error':
      case 'config-error':
        log?.error({ ...h }, 'media error');
        break;
      default:
        log?.debug({ ...h }, 'media health');
    }
    this.emit('health', h);
  }

  /** Announces, once per worker run, that the ring holds a full pre-roll of that run. */
  private checkPreroll(runId: number): void {
    if (this.prerollAnnounced === runId || this.ring === undefined) return;
    const run = this.ring.closedSegments().filter((s) => s.runId === runId);
    const first = run[0];
    const last = run.at(-1);
    if (first === undefined || last === undefined) return;
    const bufferedMs = last.endMs - first.startMs;
    if (bufferedMs < this.options.config.prerollS * 1000) return;
    this.prerollAnnounced = runId;
    this.onHealth({ type: 'preroll-ready', runId, bufferedMs });
  }

  private onMessage(m: WorkerMessage, runId: number): void {
    switch (m.type) {
      case 'segment-opened':
        this.ring?.opened(runId, m.path, m.startMs);
        return;
      case 'segment-closed': {
        this.ring?.closed(runId, m.path, m.endMs);
        this.clips?.poll(false);
        this.prune();
        this.checkPreroll(runId);
        return;
      }
      case 'frame': {
        this.lastSeenMs = m.timestampMs;
        const frame: GrayFrame = {
          width: m.width,
          height: m.height,
          stride: m.stride,
          timestampMs: m.timestampMs,
          data: m.data,
        };
        try {
          this.options.analyser?.onFrame(frame);
        } catch (err) {
          this.options.logger?.warn({ err }, 'motion analyser threw');
        }
        this.emit('motion-frame', frame);
        return;
      }
      case 'snapshot': {
        this.lastSeenMs = m.tsMs;
        this.snapshotSeq += 1;
        this.snapshot = {
          id: `snap-${Math.round(m.tsMs).toString(36)}-${this.snapshotSeq}`,
          tsMs: m.tsMs,
          bytes: m.data,
        };
        this.emit('snapshot', this.snapshot);
        return;
      }
      default:
        return;
    }
  }

  private prune(): void {
    const ring = this.ring;
    const clips = this.clips;
    if (ring === undefined || clips === undefined) return;
    const c = this.options.config;
    const now = this.now();
    const horizon = now - (c.prerollS + 2 * c.segmentS) * 1000 - 2000;
    // Hard bound on the RAM ring: even a clip stuck in its sink cannot pin more than this.
    const floor = now - (c.prerollS + c.maxClipS + c.postrollS + 30) * 1000;
    ring.prune(Math.max(floor, Math.min(horizon, clips.keepFromMs())));
  }

  /**
   * A press or motion: the clip will cover [atMs - preroll, atMs + postroll],
   * merged with a clip still collecting. Returns the clip id (the store may assign
   * its own; the clip-finished event carries the final one). Never throws.
   */
  trigger(reason: string, atMs: number = this.now()): string | undefined {
    return this.clips?.trigger(reason, atMs);
  }

  /**
   * The light in front of the sim camera (a rig's lamp): the test picture is
   * brightened while it is on, across worker restarts. A real camera ignores it.
   */
  setLight(on: boolean): void {
    if (on === this.lit) return;
    this.lit = on;
    this.supervisor?.send({ type: 'light', on });
  }

  latestSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  /** The latest snapshot if it is at most 1 s old, else the next one (rejects after 2 s). */
  snapshotNow(): Promise<Snapshot> {
    const s = this.snapshot;
    if (s !== undefined && this.now() - s.tsMs <= SNAPSHOT_MAX_AGE_MS) return Promise.resolve(s);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('snapshot', on);
        reject(new Error(`no snapshot within ${SNAPSHOT_WAIT_MS} ms (camera down?)`));
      }, SNAPSHOT_WAIT_MS);
      const on = (snap: Snapshot): void => {
        clearTimeout(timer);
        this.off('snapshot', on);
        resolve(snap);
      };
      this.on('snapshot', on);
    });
  }

  async stop(): Promise<void> {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    const sup = this.supervisor;
    this.supervisor = undefined;
    await sup?.stop();
    this.workerUp = false;
    if (sup !== undefined) await this.ring?.runEnded(sup.currentRunId, this.lastSeenMs);
    await this.clips?.drain();
    await this.ring?.clear();
    // A segment the worker had begun when it stopped may never have been announced (its
    // segment-opened message died with the worker): plaintext the ring does not know of.
    const ringDir = path.resolve(this.options.config.ringDir);
    await removeRingFiles(ringDir).catch(() => undefined);
    // The ring directory goes too (if nothing else was put there): it lives in RAM.
    await rmdir(ringDir).catch((err: unknown) => {
      const code = (err as { code?: unknown }).code;
      if (code !== 'ENOENT')
        this.options.logger?.warn(
          { ringDir, code },
          'the ring directory was not removed: it holds other files',
        );
    });
  }
}

/** Deletes every file the media worker writes or reads in the ring directory (segments, faststart remuxes, the mask image). */
async function removeRingFiles(ringDir: string): Promise<void> {
  for (const name of await readdir(ringDir)) {
    if (isSegmentName(name) || name.startsWith('.faststart-') || name === MASK_IMAGE_FILE)
      await rm(path.join(ringDir, name), { force: true });
  }
}
