import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { connect } from 'mqtt';
import { startMosquitto } from '../broker/local-mosquitto.js';
import { connectWires } from '../hal/sim/wire-client.js';
import { type MediaConfig, mediaConfigSchema } from '../media/config.js';
import { buildMediaGraph } from '../media/pipeline/build.js';
import { toLaunchArgv } from '../media/pipeline/launch.js';
import { blackPixelPng, MASK_IMAGE_FILE } from '../media/pipeline/mask-image.js';
import { doorbell, topicsFor } from '../proto/index.js';
import { startSlotDaemon } from '../test-support/slot-daemon.js';
import { flashedRoot } from './flashed-root.js';
import { machine } from './machine.js';
import { procCpuS, procRssMb } from './proc.js';
import type { BenchArgs } from './run.js';
import { round3 } from './stats.js';

/** Pipeline running before the measured window (the pre-roll must be in the ring before the press). */
const WARMUP_MS = 6000;
/** Each measured window; a press at its start, its clip (post-roll 10 s) finishes inside it. */
const WINDOW_MS = 14_000;
/** The live children of `pid` whose command line contains `needle`. */
async function childrenOf(pid: number, needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      if ((await readFile(`/proc/${name}/cmdline`, 'utf8')).includes(needle)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

interface OursResult {
  cpuS: number;
  daemonCpuS: number;
  workerCpuS: number;
  daemonRssMb: number;
  daemonPeakRssMb: number;
  workerRssMb: number;
  workerPeakRssMb: number;
  pressToClipMs: number;
  clipBytes: number;
}

/**
 * The product as a board runs it: the bundle flashed into a temporary root,
 * its daemon started the way the unit starts it (`node <slot>/doorbell.js run`,
 * sim HAL, the test camera at this size) with its supervised media worker,
 * clips encrypted to a throw-away recipient. Measured from outside, as `ps`
 * would: CPU (utime + stime) of the daemon and of the worker, each with its
 * reaped children (the per-clip remux), and the resident set of each. The press
 * goes through the sim button's wire; the clip is seen as its signed event.
 */
async function runFlashed(
  root: string,
  brokerUrl: string,
  label: string,
  camera: { width: number; height: number; bitrateKbps: number },
): Promise<OursResult> {
  const deviceId = `media-bench-${label}`;
  const ringDir = `/dev/shm/doorbell-bench-ring-${label}-${process.pid}`;
  await writeFile(
    path.join(root, 'etc', 'doorbell', 'config.json'),
    JSON.stringify({
      hal: { backend: 'sim' },
      media: {
        camera: {
          source: { kind: 'test', pattern: 'ball' },
          ...camera,
          fps: 30,
          encoder: 'x264enc',
          ringDir,
        },
        recordMotion: false,
        store: { recipients: [await identityToRecipient(await generateX25519Identity())] },
      },
      log: { level: 'warn' },
    }),
  );
  const events = connect(brokerUrl, { protocolVersion: 5, reconnectPeriod: 0 });
  const seen: doorbell.v1.Event[] = [];
  const waiters = new Set<() => void>();
  events.on('message', (_t, payload) => {
    try {
      seen.push(doorbell.v1.Event.decode(doorbell.v1.Envelope.decode(payload).body));
      for (const w of waiters) w();
    } catch {
      // not an event
    }
  });
  const next = (match: (e: doorbell.v1.Event) => boolean, what: string, ms: number) =>
    new Promise<doorbell.v1.Event>((resolve, reject) => {
      const from = seen.length;
      const check = () => {
        const hit = seen.slice(from).find(match);
        if (!hit) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`${what}: not within ${ms} ms`));
      }, ms);
      waiters.add(check);
    });
  await events.subscribeAsync(topicsFor(deviceId).evt, { qos: 1 });
  const ready = next((e) => e.mediaHealth?.state === 'preroll-ready', 'the ring holding a pre-roll', 60_000);
  const daemon = startSlotDaemon(root, brokerUrl, deviceId);
  let wires: Awaited<ReturnType<typeof connectWires>> | undefined;
  try {
    await ready.catch((err: Error) => {
      throw new Error(`${err.message}\n${daemon.output()}`);
    });
    const daemonPid = daemon.child.pid as number;
    const [workerPid, ...more] = await childrenOf(daemonPid, 'worker/main.js');
    if (workerPid === undefined || more.length > 0)
      throw new Error(`expected one media worker, found ${more.length + (workerPid ? 1 : 0)}`);
    await sleep(WARMUP_MS);
    wires = await connectWires(path.join(root, 'state', 'sim-wires.sock'));
    const clip = next((e) => e.kind === 'clipRecorded', 'the clip of the press', WINDOW_MS + 30_000).then(
      (e) => ({ e, at: Date.now() }),
    );
    clip.catch(() => {});
    const d0 = await procCpuS(daemonPid, true);
    const w0 = await procCpuS(workerPid, true);
    const pressAt = Date.now();
    await wires.press(100);
    await sleep(WINDOW_MS);
    const d1 = await procCpuS(daemonPid, true);
    const w1 = await procCpuS(workerPid, true);
    const daemonRss = await procRssMb(daemonPid);
    const workerRss = await procRssMb(workerPid);
    const recorded = await clip;
    return {
      cpuS: d1 - d0 + (w1 - w0),
      daemonCpuS: d1 - d0,
      workerCpuS: w1 - w0,
      daemonRssMb: daemonRss.now,
      daemonPeakRssMb: daemonRss.peak,
      workerRssMb: workerRss.now,
      workerPeakRssMb: workerRss.peak,
      pressToClipMs: recorded.at - pressAt,
      clipBytes: Number(recorded.e.clipRecorded?.bytes ?? 0),
    };
  } finally {
    await wires?.close();
    await daemon.stop();
    events.end(true);
    await rm(ringDir, { recursive: true, force: true });
  }
}

/** Baseline: the same pipeline description in a plain gst-launch-1.0, fakesinks for the appsinks. */
async function runBaseline(
  config: MediaConfig,
  dir: string,
): Promise<{ cpuS: number; rssMb: number; peakRssMb: number }> {
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
    const cpuS = (await procCpuS(pid)) - c0;
    const rss = await procRssMb(pid);
    return { cpuS, rssMb: rss.now, peakRssMb: rss.peak };
  } finally {
    child.kill('SIGINT');
    await Promise.race([exited, sleep(3000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/**
 * Media pipeline cost of the flashed product: at 720p30 and 1080p30 with
 * x264enc, the CPU time and resident memory of the daemon and its media worker
 * as processes (runFlashed), against a plain `gst-launch-1.0` running the same
 * pipeline description (every branch, fakesink in place of the appsinks) for
 * the same window length, just before and just after ours in the same run.
 * Our window holds one press and its clip (pre-roll 5 s, post-roll 10 s).
 */
export async function mediaBench(_args: BenchArgs): Promise<Record<string, unknown>> {
  const dir = await mkdtemp('/dev/shm/bench-media-');
  const broker = await startMosquitto();
  const runs: Record<string, unknown> = {};
  const ratios: Record<string, number> = {};
  const rssRatios: Record<string, number> = {};
  const latencies: number[] = [];
  try {
    const { root } = await flashedRoot(path.join(dir, 'board'));
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
      const before = await runBaseline(config, dir);
      process.stderr.write(`media bench: ${label} the flashed daemon and its worker\n`);
      const ours = await runFlashed(root, broker.url, label, { width, height, bitrateKbps });
      process.stderr.write(`media bench: ${label} gst-launch baseline\n`);
      const after = await runBaseline(config, dir);
      const baseCpuS = (before.cpuS + after.cpuS) / 2;
      const baseRssMb = Math.max(before.rssMb, after.rssMb);
      ratios[label] = ours.cpuS / baseCpuS;
      rssRatios[label] = (ours.daemonRssMb + ours.workerRssMb) / baseRssMb;
      latencies.push(ours.pressToClipMs);
      runs[label] = {
        ours: Object.fromEntries(Object.entries(ours).map(([k, v]) => [k, round3(v)])),
        baseline_cpu_s: [round3(before.cpuS), round3(after.cpuS)],
        baseline_rss_mb: [round3(before.rssMb), round3(after.rssMb)],
        cpu_ratio: round3(ratios[label]),
        rss_ratio: round3(rssRatios[label]),
      };
      await rm(path.join(dir, `ring-${label}`), { recursive: true, force: true });
    }
  } finally {
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return {
    machine: machine(),
    method:
      'the bundle flashed into a temporary root, its daemon started as the unit starts it (sim HAL, test camera): CPU = /proc/<pid>/stat utime+stime (+ reaped children) of the daemon and of its media worker over a 14 s window with one press (through the sim wire) and its clip; RSS = VmRSS of each at the window end; vs gst-launch-1.0 running the same description (fakesinks) for 14 s before and after (CPU: mean; RSS: the larger VmRSS)',
    window_s: WINDOW_MS / 1000,
    runs,
    metric: 'media',
    cpu_ratio_720p: round3(ratios['720p'] ?? Number.NaN),
    cpu_ratio_1080p: round3(ratios['1080p'] ?? Number.NaN),
    rss_ratio_720p: round3(rssRatios['720p'] ?? Number.NaN),
    rss_ratio_1080p: round3(rssRatios['1080p'] ?? Number.NaN),
    press_to_clip_ms: latencies.map(round3),
    postroll_s: 10,
  };
}
