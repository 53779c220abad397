import { existsSync } from 'node:fs';
import type { AppSink, BusMessage, Pipeline } from 'gstreamer-superficial';
import type { SourceConfig } from '../config.js';
import { grayStride } from '../frame.js';
import { clip, type StartMessage, type WorkerMessage } from '../ipc.js';
import { NAMES } from '../pipeline/build.js';
import { explainPipelineError } from '../pipeline/preflight.js';

export const WORKER_EXIT = { ok: 0, error: 1, config: 78 } as const;

/** No frame for this long while playing: the camera is stuck or gone. */
export const STALL_MS = 5000;
/** videobalance brightness while the sim camera's light is on: a clear change for the motion detector. */
export const LIT_BRIGHTNESS = 0.5;
/** A pull answered null (flushing, not yet playing): wait this long before asking again. */
const NULL_PULL_RETRY_MS = 100;

type Gst = typeof import('gstreamer-superficial');

/** A source that names a path which does not exist: the message to report, else undefined. */
export function missingSource(source: SourceConfig): string | undefined {
  if (source.kind === 'v4l2' && !existsSync(source.device)) return `V4L2 device ${source.device} not found`;
  if (source.kind === 'file' && !existsSync(source.path)) return `video file ${source.path} not found`;
  return undefined;
}

/**
 * Runs one pipeline for the life of the process (gstreamer-superficial never
 * frees a pipeline nor a findChild wrapper, so both are made exactly once).
 */
export class MediaWorker {
  private pipeline: Pipeline | undefined;
  private stopped = false;
  private upSent = false;
  private anchorWallMs = 0;
  private lastFrameMs = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  /** The test source's light (videobalance); absent for a real camera. */
  private light: { brightness: number } | undefined;

  constructor(
    private readonly gst: Gst,
    private readonly start_: StartMessage,
    private readonly launch: string,
    private readonly send: (m: WorkerMessage) => void,
    private readonly exit: (code: number) => void,
  ) {}

  start(): void {
    const { runId } = this.start_;
    const missing = missingSource(this.start_.config.source);
    if (missing !== undefined) {
      // Also the only fast path for a missing device: v4l2src fails in NULL->READY, and
      // gstreamer-superficial stops polling the bus once the pipeline is in NULL, so that
      // error may never arrive (the 5 s stall watchdog would catch it).
      this.fail('camera', NAMES.source, missing, false);
      return;
    }
    let pipeline: Pipeline;
    try {
      pipeline = new this.gst.Pipeline(this.launch);
    } catch (err) {
      this.fail('config', 'pipeline', `cannot build the pipeline: ${(err as Error).message}`, true);
      return;
    }
    this.pipeline = pipeline;
    const motion = pipeline.findChild(NAMES.motion) as AppSink | undefined;
    const snapshot = pipeline.findChild(NAMES.snapshot) as AppSink | undefined;
    if (motion === undefined || snapshot === undefined) {
      this.fail('config', 'pipeline', 'appsinks missing from the pipeline', true);
      return;
    }
    this.light = pipeline.findChild(NAMES.light) as { brightness: number } | undefined;
    if (this.start_.light === true) this.setLight(true);
    this.send({ type: 'ready', runId, launch: this.launch });
    pipeline.pollBus((m) => this.onBus(m));
    // Running time 0 is (within the state change) the moment the live pipeline starts playing.
    this.anchorWallMs = Date.now();
    pipeline.play();
    this.lastFrameMs = Date.now();
    this.pullLoop(motion, (buf, caps) => {
      const width = Number(caps.width);
      const height = Number(caps.height);
      this.send({
        type: 'frame',
        width,
        height,
        stride: grayStride(width),
        timestampMs: Date.now(),
        data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength),
      });
    });
    this.pullLoop(snapshot, (buf) => {
      this.send({
        type: 'snapshot',
        tsMs: Date.now(),
        data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength),
      });
    });
    this.stallTimer = setInterval(() => {
      if (Date.now() - this.lastFrameMs > STALL_MS) {
        this.fail('camera', NAMES.source, `no frame for ${STALL_MS} ms: camera stuck or gone`, false);
      }
    }, 1000);
  }

  private pullLoop(sink: AppSink, onBuffer: (buf: Buffer, caps: Record<string, unknown>) => void): void {
    const again = (): void => {
      if (!this.stopped) sink.pull(handler);
    };
    const handler = (buf: Buffer | null, caps: Record<string, unknown>): void => {
      if (this.stopped) return;
      if (buf === null) {
        setTimeout(again, NULL_PULL_RETRY_MS);
        return;
      }
      this.lastFrameMs = Date.now();
      onBuffer(buf, caps);
      again();
    };
    again();
  }

  private wallOf(runningTime: unknown): number {
    const ns = Number(runningTime);
    return Number.isFinite(ns) ? this.anchorWallMs + ns / 1e6 : Date.now();
  }

  private onBus(m: BusMessage): void {
    if (this.stopped) return;
    const { runId } = this.start_;
    switch (m.type) {
      case 'element': {
        const location = typeof m.location === 'string' ? m.location : undefined;
        if (location === undefined) return;
        if (m.name === 'splitmuxsink-fragment-opened') {
          this.send({
            type: 'segment-opened',
            runId,
            path: location,
            startMs: this.wallOf(m['running-time']),
          });
          if (!this.upSent) {
            this.upSent = true;
            this.send({ type: 'pipeline-up', runId });
          }
        } else if (m.name === 'splitmuxsink-fragment-closed') {
          this.send({ type: 'segment-closed', runId, path: location, endMs: this.wallOf(m['running-time']) });
        }
        return;
      }
      case 'error': {
        const element = String(m._src_element_name ?? 'pipeline');
        const text = String(m.message ?? 'unknown error');
        const negotiation = /not.negotiated/i.test(text);
        const kind = negotiation ? 'config' : this.isSourceElement(element) ? 'camera' : 'pipeline';
        this.fail(kind, element, explainPipelineError(element, text), negotiation);
        return;
      }
      case 'eos':
        this.fail('camera', NAMES.source, 'the source ended (end of stream)', false);
        return;
      default:
        return;
    }
  }

  private isSourceElement(element: string): boolean {
    return element === NAMES.source || /src|decodebin|demux|typefind/.test(element);
  }

  private fail(
    kind: 'camera' | 'config' | 'pipeline',
    element: string,
    message: string,
    fatal: boolean,
  ): void {
    if (this.stopped) return;
    this.send({ type: 'error', kind, element: clip(element), message: clip(message), fatal });
    this.exit(fatal ? WORKER_EXIT.config : WORKER_EXIT.error);
  }

  /** Switches the sim camera's light; a real camera has none and ignores it. */
  setLight(on: boolean): void {
    if (this.light !== undefined) this.light.brightness = on ? LIT_BRIGHTNESS : 0;
  }

  /** Stops the pipeline (state NULL). Idempotent; the process exits right after. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.stallTimer !== undefined) clearInterval(this.stallTimer);
    this.pipeline?.stop();
  }
}
