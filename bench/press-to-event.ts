import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMosquitto } from '../broker/local-mosquitto.js';
import { lowerBackgroundThreads } from '../common/background-threads.js';
import { silentLogger } from '../common/logger.js';
import type { DoorbellConfigInput } from '../firmware/config/schema.js';
import { connectWires } from '../hal/index.js';
import { generateSigningKey, loadOrCreateSigningKey, publicKeyToText } from '../proto/index.js';
import { machine } from './machine.js';
import { exited, MosquittoRoundTrip } from './mqtt-baseline.js';
import { ed25519Speed } from './openssl-speed.js';
import type { BenchArgs } from './run.js';
import { summary } from './stats.js';

const ROOT = resolve(import.meta.dirname, '..');
const WARMUP = 20;
/** Our presses and baseline round trips alternate in blocks of this size, so both see the same machine. */
const BLOCK = 100;
/** One press (15 ms down, 15 ms up) every 30 ms. */
const PRESS_PERIOD_MS = 30;

/**
 * Press -> verified event at the hub. Four processes, as in a home: the real
 * daemon (sim hardware, driven over its wire socket), a loopback Mosquitto,
 * a hub that verifies each event (bench/hub-probe.ts), and this driver.
 * Baseline, same run, same broker: mosquitto_pub -> mosquitto_sub round trip
 * of a same-size payload, each after 30 ms idle as the presses come, so that
 * both are measured on a machine that has just woken up. The same round
 * trips back to back (hot caches, no wake-ups, which no press sees) are
 * reported beside it.
 *
 * All times are CLOCK_MONOTONIC (process.hrtime), comparable across the
 * processes. A press counts from its recognition by the debouncer: the
 * chime-on time recorded by the sim wire minus the recognition -> chime-on
 * time the device measured itself and reported in ChimeRang.
 */
export async function pressToEvent(options: BenchArgs): Promise<Record<string, unknown>> {
  const { presses } = options;
  // This driver is on the baseline's path (it writes to mosquitto_pub and reads
  // mosquitto_sub) and shares the two cores with ours: the bursts of its own
  // compiler and GC threads must not land in either measurement.
  const driverThreads = lowerBackgroundThreads(silentLogger());
  const total = presses + WARMUP;
  const dir = await mkdtemp(join(tmpdir(), 'bench-press-'));
  const broker = await startMosquitto();
  const stateDir = join(dir, 'device');
  const { key: deviceKey } = await loadOrCreateSigningKey(join(stateDir, 'identity.pem'));
  const config: DoorbellConfigInput = {
    deviceId: 'bench-door',
    stateDir,
    broker: { url: broker.url },
    trust: { hubKeys: [publicKeyToText(generateSigningKey())] },
    // Short press timings so the run fits in a minute; they are outside the measured path.
    hal: { backend: 'sim', button: { minPressMs: 10, lockoutMs: 0 }, chime: { pulseMs: 10, minGapMs: 0 } },
    log: { level: 'warn' },
  };
  await writeFile(join(dir, 'doorbell.json'), JSON.stringify(config));
  const node = (script: string, args: string[]) =>
    spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  const daemon = node('firmware/cli.ts', ['run', '--config', join(dir, 'doorbell.json')]);
  const hub = node('bench/hub-probe.ts', [broker.url, 'bench-door', publicKeyToText(deviceKey)]);
  try {
    const verifiedAt = new Map<number, bigint>();
    const chimeUs = new Map<number, number>();
    const sizes: number[] = [];
    const hubReady = new Promise<void>((resolveReady) => {
      createInterface({ input: hub.stdout }).on('line', (line) => {
        const [what, n, a, b] = line.split(' ');
        if (what === 'ready') resolveReady();
        if (what === 'pressed' && n && a && b) {
          verifiedAt.set(Number(n), BigInt(a));
          sizes.push(Number(b));
        }
        if (what === 'chime' && n && a) chimeUs.set(Number(n), Number(a));
      });
    });
    const socket = join(stateDir, 'sim-wires.sock');
    for (let i = 0; i < 400 && !existsSync(socket); i++) await sleep(50);
    const wires = await connectWires(socket);
    await hubReady;
    await sleep(500);

    // Envelopes of a press event are 190 bytes or so; the exact mean is reported below.
    const baselineRt = await MosquittoRoundTrip.open(broker.port, 190);
    const baselineSamples: number[] = [];
    const backToBackSamples: number[] = [];
    try {
      for (let done = 0; done < total; ) {
        const block = Math.min(BLOCK, total - done);
        for (let i = 0; i < block; i++) {
          await wires.press(PRESS_PERIOD_MS / 2);
          await sleep(PRESS_PERIOD_MS / 2); // released long enough to be recognised as a release
        }
        const measured = Math.max(0, done + block - WARMUP) - Math.max(0, done - WARMUP);
        done += block;
        // For reference, the round trips back to back; then the baseline:
        // the same paced like the presses (30 ms apart).
        backToBackSamples.push(...(await baselineRt.sample(measured)));
        baselineSamples.push(...(await baselineRt.sample(measured, PRESS_PERIOD_MS)));
      }
    } finally {
      await baselineRt.close();
    }
    for (let i = 0; i < 100 && (verifiedAt.size < total || chimeUs.size < total); i++) await sleep(50);
    // Fetched after the run: a live watch would wake this process at the very
    // moment the broker and the hub need the two cores.
    const chimeOnNs = (await wires.chimeHistory()).filter((c) => c.on).map((c) => c.atNs);
    await wires.close();

    const pressToEvent: number[] = [];
    const pressToChime: number[] = [];
    for (let seq = WARMUP + 1; seq <= total; seq++) {
      const verified = verifiedAt.get(seq);
      const on = chimeOnNs[seq - 1];
      const us = chimeUs.get(seq);
      if (verified === undefined || on === undefined || us === undefined) continue;
      const recognisedNs = on - BigInt(us) * 1000n;
      pressToEvent.push(Number(verified - recognisedNs) / 1e6);
      pressToChime.push(us / 1000);
    }
    if (pressToEvent.length < presses * 0.99) {
      throw new Error(
        `only ${pressToEvent.length} of ${presses} presses measured (verified ${verifiedAt.size}, chimes ${chimeOnNs.length}, chime events ${chimeUs.size})`,
      );
    }
    const payloadBytes = Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length);
    if (options.samplesFile) {
      await writeFile(
        options.samplesFile,
        JSON.stringify({
          pressToEventMs: pressToEvent,
          baselineMs: baselineSamples,
          backToBackBaselineMs: backToBackSamples,
          pressToChimeMs: pressToChime,
        }),
      );
    }
    const crypto = await ed25519Speed();
    const ours = summary(pressToEvent);
    const base = summary(baselineSamples);
    const backToBack = summary(backToBackSamples);
    const chime = summary(pressToChime);
    return {
      metric: 'press-to-event',
      presses,
      warmup_presses: WARMUP,
      measured: pressToEvent.length,
      payload_bytes: payloadBytes,
      p50_ms: ours.p50,
      p90_ms: ours.p90,
      p99_ms: ours.p99,
      max_ms: ours.max,
      baseline: `mosquitto_pub -l -> mosquitto_sub, QoS 1, same broker, 190-byte payload, each after ${PRESS_PERIOD_MS} ms idle as presses come, in blocks interleaved with ours`,
      baseline_samples: baselineSamples.length,
      baseline_p50_ms: base.p50,
      baseline_p99_ms: base.p99,
      ratio_p99: Math.round((ours.p99 / base.p99) * 100) / 100,
      back_to_back_baseline:
        'the same round trips back to back: hot caches and no wake-ups, which no press sees',
      back_to_back_baseline_p50_ms: backToBack.p50,
      back_to_back_baseline_p99_ms: backToBack.p99,
      ratio_p99_back_to_back: Math.round((ours.p99 / backToBack.p99) * 100) / 100,
      openssl_ed25519_sign_us: crypto.sign_us,
      openssl_ed25519_verify_us: crypto.verify_us,
      chime_p50_ms: chime.p50,
      chime_p99_ms: chime.p99,
      chime_max_ms: chime.max,
      targets: { ratio_p99: 3, chime_p99_ms: 1 },
      machine: machine(),
    };
  } finally {
    for (const child of [hub, daemon]) child.kill('SIGTERM');
    await Promise.all([exited(hub), exited(daemon)]);
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
    driverThreads.stop();
  }
}
