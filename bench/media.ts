import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { silentLogger } from '../common/logger.js';
import { type MediaConfig, mediaConfigSchema } from '../media/config.js';
import { buildMediaGraph } from '../media/pipeline/build.js';
import { toLaunchArgv } from '../media/pipeline/launch.js';
import { blackPixelPng, MASK_IMAGE_FILE } from '../media/pipeline/mask-image.js';
import { type ClipFinished, MediaService } from '../media/service.js';
import { ClipStore } from '../media/store/clip-store.js';
import { storeConfigSchema } from '../media/store/config.js';
import { machine } from './machine.js';
import type { BenchArgs } from './run.js';
import { round3 } from './stats.js';

/** Pipeline running before the measured window (the pre-roll must be in the ring before the press). */
const WARMUP_MS = 6000;
/** Each measured window; a press at its start, its clip (post-roll 10 s) finishes inside it. */
const WINDOW_MS = 14_000;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * CPU seconds (user + system) of a process from /proc/<pid>/stat; with
 * `reapedChildren`, plus those of its children that have exited and were
 * waited for (the per-clip remux `gst-launch-1.0` processes).
 */
async function procCpuS(pid: number | 'self', reapedChildren = false): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const own = Number(fields[11]) + Number(fields[12]);
  const children = reapedChildren ? Number(fields[13]) + Number(fields[14]) : 0;
  return (own + children) / CLK_TCK;
}

/** Peak resident set (VmHWM) of a process in MiB. */
async function procPeakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface OursResult {
  cpuS: number;
  parentCpuS: number;
  workerCpuS: number;
  loopLagP99Ms: number;
  loopLagMaxMs: number;
  parentRssMb: number;
  workerRssMb: number;
  pressToClipMs: number;
  clipBytes: number;
  restarts: number;
}

/**
 * The product path: in this process (the control plane's role) the
 * MediaService and the encrypted clip store (age, to a throw-away recipient,
 * in RAM), and the supervised media worker.
 */
async function runOurs(config: MediaConfig, storeDir: string): Promise<OursResult> {
  const store = new ClipStore({
    config: storeConfigSchema.parse({
      dir: storeDir,
      recipients: [await identityToRecipient(await generateX25519Identity())],
    }),
    logger: silentLogger(),
  });
  await store.start();
  const service = new MediaService({ config, sink: store });
  try {
    await service.start();
    if (!service.isUp) throw new Error('media pipeline did not come up');
    await sleep(WARMUP_MS);
    const pid = service.workerPid as number;
    const nextClip = () =>
      new Promise<{ clip: ClipFinished; at: number }>((resolve, reject) => {
        service.once('clip-finished', (clip) => resolve({ clip, at: Date.now() }));
        service.once('clip-failed', (e) => reject(new Error(e.error)));
      });
    // Window 1, CPU: a press at its start; its clip is cut and written inside the window.
    const clip1 = nextClip();
    clip1.catch(() => {});
    const w0 = await procCpuS(pid);
    const p0 = await procCpuS('self', true);
    const pressAt = Date.now();
    service.trigger('press', pressAt);
    await sleep(WINDOW_MS);
    const p1 = await procCpuS('self', true);
    const w1 = await procCpuS(pid);
    const first = await Promise.race([clip1, sleep(10_000).then(() => undefined)]);
    if (first === undefined) throw new Error('no clip within the window + 10 s');
    // Window 2, event-loop delay (a separate window: a 1 ms monitor costs ~25 ms CPU/s itself).
    const lag = monitorEventLoopDelay({ resolution: 1 });
    const clip2 = nextClip();
    clip2.catch(() => {});
    lag.enable();
    service.trigger('press');
    await sleep(WINDOW_MS);
    lag.disable();
    await clip2;
    const workerCpuS = w1 - w0;
    const parentCpuS = p1 - p0;
    return {
      cpuS: parentCpuS + workerCpuS,
      parentCpuS,
      workerCpuS,
      loopLagP99Ms: lag.percentile(99) / 1e6,
      loopLagMaxMs: lag.max / 1e6,
      parentRssMb: process.resourceUsage().maxRSS / 1024,
      workerRssMb: await procPeakRssMb(pid),
      pressToClipMs: first.at - pressAt,
      clipBytes: first.clip.bytes,
      restarts: service.restarts,
    };
  } finally {
    await service.stop();
    await store.stop();
    await rm(storeDir, { recursive: true, force: true });
  }
}

/** Baseline: the same pipeline description in a plain gst-launch-1.0, fakesinks for the appsinks. */
async function runBaseline(config: MediaConfig, dir: string): Promise<number> {
  await writeFile(path.join(dir, MASK_IMAGE_FILE), blackPixelPng());
  const argv = toLaunchArgv(
    buildMediaGraph(config, {
      encoder: 'x264enc',
      segmentLocation: path.join(dir, 'b-%05d.ts'),
      maskImage: path.join(dir, MASK_IMAGE_FILE),
      sinks: 'fake',
    }),
  );
  const child = spawn('gst-launch-1.0', ['-q', ...argv], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await sleep(2000);
    const pid = child.pid as number;
    const c0 = await procCpuS(pid);
    await sleep(WINDOW_MS);
    return (await procCpuS(pid)) - c0;
  } finally {
    child.kill('SIGINT');
    await Promise.race([exited, sleep(3000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/**
 * Media pipeline cost: at 720p30 and 1080p30 with x264enc, the CPU time of this
 * process (the control plane's MediaService) plus the media worker, against a plain
 * `gst-launch-1.0` running the same pipeline description (every branch, fakesink in
 * place of the appsinks) for the same window length, just before and just after
 * ours in the same run. Our CPU window holds one press and its clip; a second window
 * measures this process's event-loop delay (1 ms resolution) with another press.
 * Press -> clip-finished latency uses the defaults (pre-roll 5 s, post-roll 10 s).
 * The per-clip remux child (about 20-30 ms CPU) is in neither figure.
 */
export async function mediaBench(_args: BenchArgs): Promise<Record<string, unknown>> {
  const dir = await mkdtemp('/dev/shm/bench-media-');
  const runs: Record<string, unknown> = {};
  const ratios: Record<string, number> = {};
  let lagP99 = 0;
  let rss = 0;
  const latencies: number[] = [];
  try {
    for (const [label, width, height, bitrateKbps] of [
      ['720p', 1280, 720, 2000],
      ['1080p', 1920, 1080, 4000],
    ] as const) {
      const config = mediaConfigSchema.parse({
        width,
        height,
        fps: 30,
        encoder: 'x264enc',
        bitrateKbps,
        ringDir: path.join(dir, `ring-${label}`),
      });
      // Baseline before and after ours, averaged: load drift on a shared machine hits both alike.
      process.stderr.write(`media bench: ${label} gst-launch baseline\n`);
      const baseBefore = await runBaseline(config, dir);
      process.stderr.write(`media bench: ${label} ours\n`);
      const ours = await runOurs(config, path.join(dir, `clips-${label}`));
      process.stderr.write(`media bench: ${label} gst-launch baseline\n`);
      const baseAfter = await runBaseline(config, dir);
      const baseCpuS = (baseBefore + baseAfter) / 2;
      ratios[label] = ours.cpuS / baseCpuS;
      lagP99 = Math.max(lagP99, ours.loopLagP99Ms);
      rss = Math.max(rss, ours.parentRssMb + ours.workerRssMb);
      latencies.push(ours.pressToClipMs);
      runs[label] = {
        ours: Object.fromEntries(Object.entries(ours).map(([k, v]) => [k, round3(v)])),
        baseline_cpu_s: [round3(baseBefore), round3(baseAfter)],
        cpu_ratio: round3(ours.cpuS / baseCpuS),
      };
      await rm(path.join(dir, `ring-${label}`), { recursive: true, force: true });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    machine: machine(),
    method:
      'CPU: /proc/<pid>/stat utime+stime of the media worker + utime+stime of this process (MediaService and the age-encrypting clip store) and its reaped children (the per-clip remux) over a 14 s window with one press and its clip, vs the mean of gst-launch-1.0 running the same description (fakesinks) for 14 s before and after; lag: monitorEventLoopDelay(1 ms) in this process over a second 14 s window with one press and its clip',
    window_s: WINDOW_MS / 1000,
    runs,
    metric: 'media',
    cpu_ratio_720p: round3(ratios['720p'] ?? Number.NaN),
    cpu_ratio_1080p: round3(ratios['1080p'] ?? Number.NaN),
    loop_lag_p99_ms: round3(lagP99),
    rss_mb: round3(rss),
    press_to_clip_ms: latencies.map(round3),
    postroll_s: 10,
  };
}
