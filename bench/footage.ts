import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import type { DoorbellConfigInput } from '../firmware/config/schema.js';
import { connectWires } from '../hal/index.js';
import type { VerifiedEvent } from '../hub/event-watcher.js';
import { fetchItem } from '../hub/footage/fetch.js';
import { fetchAndDecrypt } from '../hub/footage/get.js';
import { FootageStore } from '../hub/footage/store.js';
import { addDevice, hubKeyPath, loadDevices } from '../hub/hub-state.js';
import { openCommandSession } from '../hub/session.js';
import { loadOrCreateSigningKey, publicKeyToText, topicsFor } from '../proto/index.js';
import { machine } from './machine.js';
import { exited } from './mqtt-baseline.js';
import type { BenchArgs } from './run.js';
import { round3, summary } from './stats.js';

const ROOT = resolve(import.meta.dirname, '..');
const DEVICE = 'bench-door';
const FETCHES = 5;
const PRESS_PERIOD_MS = 100;

/**
 * A 30 s clip at 2 Mbit/s (GStreamer's noise pattern, which no encoder can
 * shrink below its bitrate) recorded by the real daemon (`doorbell run`,
 * sim hardware, its own process), then fetched end to end into a decrypted
 * file: signed FetchItem windows, signed chunks over a loopback Mosquitto,
 * the hub's content-addressed store and its SHA-256 check, streaming age
 * decryption as the chunks arrive. Baseline, same run, same broker: `mosquitto_pub -f` of the same
 * ciphertext to a `mosquitto_sub -C 1` (one QoS 1 message, no signing, no
 * hashing, no decryption). Then presses, idle and during back-to-back
 * fetches, timed press -> verified event at a hub in its own process
 * (bench/hub-probe.ts) as in `press-to-event`.
 */
export async function footageBench(options: BenchArgs): Promise<Record<string, unknown>> {
  const presses = Math.min(options.presses, 300);
  const dir = await mkdtemp(join(tmpdir(), 'bench-footage-'));
  const broker = await startMosquitto();
  const stateDir = join(dir, 'device');
  const hubState = join(dir, 'hub');
  const { key: deviceKey } = await loadOrCreateSigningKey(join(stateDir, 'identity.pem'));
  const { key: hubKey } = await loadOrCreateSigningKey(hubKeyPath(hubState));
  await addDevice(hubState, DEVICE, publicKeyToText(deviceKey), false);
  const identity = await generateX25519Identity();
  const config: DoorbellConfigInput = {
    deviceId: DEVICE,
    stateDir,
    broker: { url: broker.url },
    trust: { hubKeys: [publicKeyToText(hubKey)] },
    hal: { backend: 'sim', button: { minPressMs: 10, lockoutMs: 0 }, chime: { pulseMs: 10, minGapMs: 0 } },
    media: {
      enabled: true,
      camera: {
        source: { kind: 'test', pattern: 'snow' },
        width: 320,
        height: 240,
        fps: 15,
        bitrateKbps: 2000,
        segmentS: 1,
        prerollS: 1,
        postrollS: 29,
        ringDir: join('/dev/shm', `bench-footage-${process.pid}`),
      },
      recordMotion: false,
      store: { recipients: [await identityToRecipient(identity)], maxClipBytes: 64 * 1024 * 1024 },
    },
    log: { level: 'warn' },
  };
  await writeFile(join(dir, 'doorbell.json'), JSON.stringify(config));
  await writeFile(join(dir, 'owner.txt'), `${identity}\n`, { mode: 0o600 });
  const node = (script: string, args: string[]) =>
    spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  const daemon = node('firmware/cli.ts', ['run', '--config', join(dir, 'doorbell.json')]);
  const probe = node('bench/hub-probe.ts', [broker.url, DEVICE, publicKeyToText(deviceKey)]);
  const session = await openCommandSession({
    stateDir: hubState,
    broker: broker.url,
    tls: {},
    logger: silentLogger(),
    devices: await loadDevices(hubState),
    as: 'hub',
    connectTimeoutMs: 10_000,
    clientPurpose: 'bench',
    extraSubscriptions: [topicsFor(DEVICE).data],
  });
  const next = (match: (e: VerifiedEvent) => boolean, what: string, ms: number) =>
    new Promise<VerifiedEvent>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no ${what} within ${ms} ms`)), ms);
      const on = (e: VerifiedEvent) => {
        if (!match(e)) return;
        clearTimeout(timer);
        session.watcher.off('event', on);
        res(e);
      };
      session.watcher.on('event', on);
    });
  try {
    const verifiedAt = new Map<number, bigint>();
    const chimeUs = new Map<number, number>();
    const probeReady = new Promise<void>((ready) => {
      createInterface({ input: probe.stdout }).on('line', (line) => {
        const [what, n, a] = line.split(' ');
        if (what === 'ready') ready();
        if (what === 'pressed' && n && a) verifiedAt.set(Number(n), BigInt(a));
        if (what === 'chime' && n && a) chimeUs.set(Number(n), Number(a));
      });
    });
    const prerollReady = next(
      (e) => e.event.mediaHealth?.state === 'preroll-ready',
      'a full pre-roll',
      60_000,
    );
    const socket = join(stateDir, 'sim-wires.sock');
    for (let i = 0; i < 400 && !existsSync(socket); i++) await sleep(50);
    const wires = await connectWires(socket);
    await probeReady;
    await prerollReady;

    // The clip: one press, 1 s of pre-roll and 29 s after it.
    const recorded = next((e) => e.event.kind === 'clipRecorded', 'the 30 s clip', 90_000);
    await wires.press(30, 100);
    const clip = (await recorded).event.clipRecorded;
    const clipId = clip?.clipId ?? '';
    const clipBytes = Number(clip?.bytes ?? 0);

    // Ours: fetch + decrypt, each into an empty hub store.
    const fetchMs: number[] = [];
    let ciphertextPath = '';
    for (let i = 0; i < FETCHES; i++) {
      const store = new FootageStore(join(dir, `hub-store-${i}`));
      const t0 = process.hrtime.bigint();
      const out = join(dir, `clip-${i}.mp4`);
      // As `clip get` does: decryption follows the chunks, the file is renamed once the hash is checked.
      const got = await fetchAndDecrypt(
        {
          commander: session.commander,
          watcher: session.watcher,
          store,
          deviceId: DEVICE,
          itemId: clipId,
          logger: silentLogger(),
        },
        [identity],
        `${out}.part`,
      );
      if (got.plaintextBytes === undefined)
        throw new Error(`decryption failed: ${got.decryptError?.message}`);
      await rename(`${out}.part`, out);
      fetchMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      ciphertextPath = got.fetched.path;
    }

    // Baseline: the same bytes through the same broker with mosquitto's own tools.
    const baselineMs: number[] = [];
    for (let i = 0; i < FETCHES; i++)
      baselineMs.push(await mosquittoFileTransfer(broker.port, ciphertextPath));

    // Presses: idle, then while fetches run back to back.
    const idle = await timePresses(wires, presses, verifiedAt, chimeUs);
    let transferring = true;
    let during: number[] = [];
    let transfers = 0;
    const loop = (async () => {
      for (let i = 0; transferring; i++) {
        await fetchItem({
          commander: session.commander,
          watcher: session.watcher,
          store: new FootageStore(join(dir, `loop-${i}`)),
          deviceId: DEVICE,
          itemId: clipId,
          logger: silentLogger(),
        });
        transfers += 1;
        await rm(join(dir, `loop-${i}`), { recursive: true, force: true });
      }
    })();
    try {
      during = await timePresses(wires, presses, verifiedAt, chimeUs);
    } finally {
      transferring = false;
      await loop;
    }
    await wires.close();
    const f = summary(fetchMs);
    const b = summary(baselineMs);
    const pi = summary(idle);
    const pd = summary(during);
    return {
      metric: 'footage',
      clip_bytes: clipBytes,
      clip_s: (Number(clip?.endMs) - Number(clip?.startMs)) / 1000,
      fetches: FETCHES,
      fetch_ms: f.p50,
      fetch_max_ms: f.max,
      fetch_mbit_s: round3((clipBytes * 8) / 1e6 / (f.p50 / 1000)),
      baseline: 'mosquitto_pub -f (the same ciphertext, QoS 1) -> mosquitto_sub -C 1, same broker',
      baseline_ms: b.p50,
      ratio_vs_mosquitto: round3(f.p50 / b.p50),
      presses_each: presses,
      press_p50_idle_ms: pi.p50,
      press_p99_idle_ms: pi.p99,
      press_p50_during_ms: pd.p50,
      press_p99_during_ms: pd.p99,
      press_ratio_p99: round3(pd.p99 / pi.p99),
      transfers_during_presses: transfers,
      targets: { fetch_ms: 2000, ratio_vs_mosquitto: 2, press_ratio_p99: 1.5 },
      machine: machine(),
    };
  } finally {
    await session.close();
    for (const child of [probe, daemon]) child.kill('SIGTERM');
    await Promise.all([exited(probe), exited(daemon)]);
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Press -> verified event at the probe hub, in ms, from the debouncer's recognition (as press-to-event). */
async function timePresses(
  wires: Awaited<ReturnType<typeof connectWires>>,
  count: number,
  verifiedAt: Map<number, bigint>,
  chimeUs: Map<number, number>,
): Promise<number[]> {
  const history = async () => (await wires.chimeHistory()).filter((c) => c.on).map((c) => c.atNs);
  const firstSeq = (await history()).length + 1;
  for (let i = 0; i < count; i++) {
    await wires.press(PRESS_PERIOD_MS / 2);
    await sleep(PRESS_PERIOD_MS / 2);
  }
  const lastSeq = firstSeq + count - 1;
  for (let i = 0; i < 200 && (!verifiedAt.has(lastSeq) || !chimeUs.has(lastSeq)); i++) await sleep(50);
  const on = await history();
  const samples: number[] = [];
  for (let seq = firstSeq; seq <= lastSeq; seq++) {
    const verified = verifiedAt.get(seq);
    const at = on[seq - 1];
    const us = chimeUs.get(seq);
    if (verified === undefined || at === undefined || us === undefined) continue;
    samples.push(Number(verified - (at - BigInt(us) * 1000n)) / 1e6);
  }
  if (samples.length < count * 0.99) throw new Error(`only ${samples.length} of ${count} presses measured`);
  return samples;
}

/** One `mosquitto_pub -f FILE` -> `mosquitto_sub -C 1` transfer, ms from the publish to the subscriber's exit. */
async function mosquittoFileTransfer(port: number, file: string): Promise<number> {
  const topic = `bench/footage/${process.pid}`;
  const common = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', '-q', '1', '-t', topic];
  // Unbuffered: its debug line "received SUBACK" is the signal that it is subscribed.
  const sub = spawn('stdbuf', ['-o0', 'mosquitto_sub', ...common, '-C', '1', '-d'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let bytes = 0;
  let subscribed: () => void = () => {};
  const ready = new Promise<void>((r) => {
    subscribed = r;
  });
  sub.stdout?.on('data', (d: Buffer) => {
    bytes += d.length;
    if (d.includes('SUBACK')) subscribed();
  });
  const timer = setTimeout(() => sub.kill('SIGTERM'), 30_000);
  await Promise.race([ready, exited(sub)]);
  clearTimeout(timer);
  if (sub.exitCode !== null || sub.signalCode !== null) throw new Error('mosquitto_sub never subscribed');
  const t0 = process.hrtime.bigint();
  const pub = spawn('mosquitto_pub', [...common, '-f', file], { stdio: 'inherit' });
  await Promise.all([exited(sub), exited(pub)]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const size = (await readFile(file)).length;
  if (bytes < size) throw new Error(`mosquitto_sub printed ${bytes} bytes of ${size}`);
  return ms;
}
