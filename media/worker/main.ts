/**
 * Media worker entry: `node --import tsx media/worker/main.ts` (dev) or
 * `node dist/media/worker/main.js`, started by `MediaSupervisor` with an IPC
 * channel (`serialization: 'advanced'`). It owns the one GStreamer pipeline.
 *
 * Exit codes: 0 after a stop request or when the parent goes away, 1 on a
 * pipeline/camera error (the supervisor restarts with backoff), 78 (EX_CONFIG)
 * when the configuration cannot work (the supervisor stops retrying).
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { parseParentMessage, type StartMessage, type WorkerMessage } from '../ipc.js';
import { buildMediaGraph } from '../pipeline/build.js';
import { toLaunchString } from '../pipeline/launch.js';
import { MediaWorker, WORKER_EXIT } from './worker.js';

// Each pending appsink pull() and the bus poll hold a libuv pool thread; the
// supervisor sets this in the environment, this is the fallback for manual runs.
if (Number(process.env.UV_THREADPOOL_SIZE ?? 0) < 8) process.env.UV_THREADPOOL_SIZE = '8';

// Video yields to the control plane: this thread's niceness is inherited by every
// thread created after it (GStreamer streaming threads, x264's, libuv's pool), so a
// busy encoder never delays the chime's event loop.
const nice = Number(process.env.DOORBELL_MEDIA_NICE ?? 10);
if (Number.isInteger(nice) && nice > 0 && nice <= 19) {
  try {
    os.setPriority(0, Math.max(os.getPriority(0), nice));
  } catch {
    // not permitted: run at the inherited priority
  }
}

if (typeof process.send !== 'function') {
  process.stderr.write('media worker: must be started with an IPC channel (child_process.fork)\n');
  process.exit(WORKER_EXIT.config);
}

/** Frames and snapshots in the channel not yet written: beyond this they are dropped, not queued. */
const MAX_PENDING_MEDIA = 8;
let pendingMedia = 0;
let droppedMedia = 0;
/** Every message not yet written, so an exit lets the last error report leave first. */
let pendingAll = 0;
const send = (m: WorkerMessage): void => {
  if (!process.connected) return;
  if (m.type === 'frame' || m.type === 'snapshot') {
    // A stalled parent must not make the worker queue video without bound: drop, the next one is fresher.
    if (pendingMedia >= MAX_PENDING_MEDIA) {
      droppedMedia += 1;
      if (droppedMedia % 100 === 1)
        process.stderr.write(`media worker: parent slow, ${droppedMedia} frames dropped\n`);
      return;
    }
    pendingMedia += 1;
    pendingAll += 1;
    process.send?.(m, undefined, {}, () => {
      pendingMedia -= 1;
      pendingAll -= 1;
    });
    return;
  }
  pendingAll += 1;
  process.send?.(m, undefined, {}, () => {
    pendingAll -= 1;
  });
};

let worker: MediaWorker | undefined;

let exiting = false;
const exit = (code: number): void => {
  if (exiting) return;
  exiting = true;
  worker?.stop();
  // Let queued IPC messages (the error that caused the exit) leave first, for at most 500 ms.
  const deadline = Date.now() + 500;
  const tryExit = (): void => {
    if (pendingAll <= 0 || !process.connected || Date.now() > deadline) process.exit(code);
    else setTimeout(tryExit, 5);
  };
  setImmediate(tryExit);
};

process.on('message', (raw) => {
  const parsed = parseParentMessage(raw);
  if (!parsed.ok) {
    process.stderr.write(`media worker: invalid message dropped: ${parsed.error}\n`);
    return;
  }
  const msg = parsed.message;
  if (msg.type === 'stop') {
    exit(WORKER_EXIT.ok);
    return;
  }
  if (msg.type === 'light') {
    worker?.setLight(msg.on);
    return;
  }
  if (worker !== undefined) return; // one pipeline per process, built once
  worker = startWorker(msg);
});
process.on('disconnect', () => exit(WORKER_EXIT.ok));
process.on('SIGTERM', () => exit(WORKER_EXIT.ok));

function startWorker(msg: StartMessage): MediaWorker {
  const require = createRequire(import.meta.url);
  const gst = require('gstreamer-superficial') as typeof import('gstreamer-superficial');
  const launch = toLaunchString(
    buildMediaGraph(msg.config, {
      encoder: msg.encoder,
      segmentLocation: msg.segmentLocation,
      maskImage: msg.maskImage,
      sinks: 'app',
    }),
  );
  const w = new MediaWorker(gst, msg, launch, send, exit);
  w.start();
  return w;
}
