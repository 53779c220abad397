import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Backoff } from '../common/backoff.js';
import { type Clock, systemClock, type TimerHandle } from '../common/clock.js';
import { type ParentMessage, parseWorkerMessage, type StartMessage, type WorkerMessage } from './ipc.js';

/** Health of the media side, as events for logs, status and tests. */
export type MediaHealth =
  | { type: 'worker-started'; runId: number; pid: number }
  | { type: 'pipeline-up'; runId: number }
  /** The ring holds a full pre-roll of this run: a trigger now gets all of it (MediaService). */
  | { type: 'preroll-ready'; runId: number; bufferedMs: number }
  | { type: 'pipeline-down'; runId: number; reason: string }
  | { type: 'worker-exit'; runId: number; code: number | null; signal: string | null }
  | { type: 'restart-scheduled'; attempt: number; delayMs: number }
  | { type: 'camera-error'; runId: number; element: string; message: string }
  | { type: 'pipeline-error'; runId: number; element: string; message: string }
  | { type: 'config-error'; runId: number; message: string }
  | { type: 'invalid-message'; runId: number; error: string };

export interface SupervisorOptions {
  /** Builds the start message for a run; runId grows by one per worker process. */
  startMessage: (runId: number) => StartMessage;
  backoff?: { minMs: number; maxMs: number };
  /** A run that stays up this long resets the backoff. */
  stableMs?: number;
  /** Grace for a stop request before SIGKILL. */
  stopTimeoutMs?: number;
  /** Override the worker entry (tests). */
  workerPath?: string;
  uvThreadpoolSize?: number;
  /** Niceness of the worker's threads (1-19, default 10): video yields CPU to the control plane. */
  nice?: number;
  /** Restart, stability and stop timers; default the system clock. */
  clock?: Clock;
}

/** The worker entry next to this module: main.ts under tsx, main.js once built. */
export function defaultWorkerPath(): { path: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  return {
    path: fileURLToPath(new URL(`./worker/main.${ts ? 'ts' : 'js'}`, import.meta.url)),
    execArgv: ts ? ['--import', 'tsx'] : [],
  };
}

const WORKER_CONFIG_EXIT = 78;

/**
 * Starts the media worker and keeps it running: every exit or crash is
 * followed by a restart after a backoff with full jitter (never a tight loop),
 * except a configuration error (exit 78), which stops the supervision and is
 * reported. Events: 'health' (MediaHealth), 'message' (validated WorkerMessage, with runId).
 */
export class MediaSupervisor extends EventEmitter<{
  health: [MediaHealth];
  message: [WorkerMessage, number];
}> {
  private child: ChildProcess | undefined;
  private runId = 0;
  private running = false;
  private restartTimer: TimerHandle | undefined;
  private stableTimer: TimerHandle | undefined;
  private readonly backoff: Backoff;
  private readonly clock: Clock;

  constructor(private readonly options: SupervisorOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff(options.backoff ?? { minMs: 500, maxMs: 30_000 });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get currentRunId(): number {
    return this.runId;
  }

  get restarts(): number {
    return Math.max(0, this.runId - 1);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.spawn();
  }

  private spawn(): void {
    this.restartTimer = undefined;
    if (!this.running) return;
    this.runId += 1;
    const runId = this.runId;
    const entry = this.options.workerPath
      ? {
          path: this.options.workerPath,
          execArgv: this.options.workerPath.endsWith('.ts') ? ['--import', 'tsx'] : [],
        }
      : defaultWorkerPath();
    const child = fork(entry.path, [], {
      execArgv: entry.execArgv,
      serialization: 'advanced',
      env: {
        ...process.env,
        UV_THREADPOOL_SIZE: String(this.options.uvThreadpoolSize ?? 8),
        DOORBELL_MEDIA_NICE: String(this.options.nice ?? 10),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    let up = false;
    let configError = false;
    child.on('message', (raw) => {
      const parsed = parseWorkerMessage(raw);
      if (!parsed.ok) {
        this.emit('health', { type: 'invalid-message', runId, error: parsed.error });
        return;
      }
      const m = parsed.message;
      if (m.type === 'pipeline-up') {
        up = true;
        this.emit('health', { type: 'pipeline-up', runId });
        this.stableTimer = this.clock.setTimeout(() => this.backoff.reset(), this.options.stableMs ?? 10_000);
      } else if (m.type === 'error') {
        if (m.kind === 'config') configError = true;
        const h: MediaHealth =
          m.kind === 'config'
            ? { type: 'config-error', runId, message: m.message }
            : m.kind === 'camera'
              ? { type: 'camera-error', runId, element: m.element, message: m.message }
              : { type: 'pipeline-error', runId, element: m.element, message: m.message };
        this.emit('health', h);
      }
      this.emit('message', m, runId);
    });
    child.on('error', (err) => {
      this.emit('health', { type: 'pipeline-error', runId, element: 'worker', message: err.message });
    });
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.stableTimer !== undefined) this.clock.clearTimeout(this.stableTimer);
      this.emit('health', { type: 'worker-exit', runId, code, signal });
      if (up) this.emit('health', { type: 'pipeline-down', runId, reason: signal ?? `exit ${code}` });
      if (!this.running) return;
      if (code === WORKER_CONFIG_EXIT || configError) {
        this.running = false;
        return;
      }
      const delayMs = this.backoff.next();
      this.emit('health', { type: 'restart-scheduled', attempt: this.backoff.attempts, delayMs });
      this.restartTimer = this.clock.setTimeout(() => this.spawn(), delayMs);
    });
    this.emit('health', { type: 'worker-started', runId, pid: child.pid ?? -1 });
    this.send(this.options.startMessage(runId));
  }

  /** Sends to the running worker; dropped while none runs (the next start message carries the state). */
  send(m: ParentMessage): void {
    const c = this.child;
    if (c?.connected) c.send(m);
  }

  /** Stops supervising and the worker: a stop request, then SIGKILL after the grace period. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.restartTimer !== undefined) this.clock.clearTimeout(this.restartTimer);
    if (this.stableTimer !== undefined) this.clock.clearTimeout(this.stableTimer);
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.send({ type: 'stop' });
    const timer = this.clock.setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs ?? 3000);
    await exited;
    this.clock.clearTimeout(timer);
  }
}
