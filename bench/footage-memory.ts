import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import type { DoorbellConfigInput } from '../firmware/config/schema.js';
import type { VerifiedEvent } from '../hub/event-watcher.js';
import { addDevice, hubKeyPath, loadDevices } from '../hub/hub-state.js';
import { openCommandSession } from '../hub/session.js';
import { ClipStore } from '../media/store/clip-store.js';
import { storeConfigSchema } from '../media/store/config.js';
import { loadOrCreateSigningKey, publicKeyToText } from '../proto/index.js';
import { machine } from './machine.js';
import { exited } from './mqtt-baseline.js';
import { sampleRss } from './proc.js';
import type { BenchArgs } from './run.js';
import { round3 } from './stats.js';

const ROOT = resolve(import.meta.dirname, '..');
const DEVICE = 'bench-door';
const MiB = 1024 * 1024;
/** The smaller clips fetched first: the heaps settle on the first, the second is the reference. */
const SMALL_MB = [8, 64] as const;
/** The large clip's growth over the reference's peak that still counts as flat. */
const FLAT_MB = 16;

/**
 * Memory of a fetch of a large clip, end to end as a person runs it: a clip
 * of `--mb` MiB (random bytes, which nothing compresses) is stored on the
 * real daemon (`doorbell run`, its own process) by its clip store, then
 * `doorbell-hub clip get --identity` (its own process, the CLI as shipped
 * from the repository) fetches it over a loopback Mosquitto and decrypts it
 * to a file, whose SHA-256 is checked against the plaintext's. The peak
 * resident set of the hub CLI (its VmHWM) and the largest of the daemon
 * (VmRSS, sampled every 50 ms) are compared with the same fetch of a 64 MiB
 * clip in the same run (after one of 8 MiB, reported too): flat means the
 * large one needs at most 16 MiB more, however much larger it is.
 * Baseline, same run: the stock `age -d` decrypting the same ciphertext.
 */
export async function footageMemoryBench(options: BenchArgs): Promise<Record<string, unknown>> {
  const largeMb = options.mb;
  const dir = await mkdtemp(join(tmpdir(), 'bench-footage-memory-'));
  const broker = await startMosquitto();
  const stateDir = join(dir, 'device');
  const hubState = join(dir, 'hub');
  const { key: deviceKey } = await loadOrCreateSigningKey(join(stateDir, 'identity.pem'));
  const { key: hubKey } = await loadOrCreateSigningKey(hubKeyPath(hubState));
  await addDevice(hubState, DEVICE, publicKeyToText(deviceKey), false);
  const identity = await generateX25519Identity();
  const ownerFile = join(dir, 'owner.txt');
  await writeFile(ownerFile, `${identity}\n`, { mode: 0o600 });
  const store = {
    recipients: [await identityToRecipient(identity)],
    maxClipBytes: Math.max(65, largeMb + 1) * MiB,
    maxTotalBytes: (largeMb * 2 + 256) * MiB,
  };

  // The clips, stored by the daemon's own store before it starts.
  const clipStore = new ClipStore({
    config: storeConfigSchema.parse(store),
    logger: silentLogger(),
    dir: join(stateDir, 'clips'),
  });
  await clipStore.start();
  const items: { mb: number; id: string; sha256: string; path: string }[] = [];
  for (const mb of [...SMALL_MB, largeMb]) {
    const hash = createHash('sha256');
    async function* plaintext(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < mb; i++) {
        const chunk = randomBytes(MiB);
        hash.update(chunk);
        yield chunk;
      }
    }
    const now = Date.now();
    const item = await clipStore.writeClip(
      { reason: 'manual', startMs: now - 30_000, endMs: now, triggerMs: now - 29_000 },
      plaintext(),
    );
    items.push({ mb, id: item.id, sha256: hash.digest('hex'), path: item.path });
  }
  await clipStore.stop();

  const config: DoorbellConfigInput = {
    deviceId: DEVICE,
    stateDir,
    broker: { url: broker.url },
    trust: { hubKeys: [publicKeyToText(hubKey)] },
    hal: { backend: 'sim' },
    media: {
      enabled: true,
      camera: {
        source: { kind: 'test', pattern: 'smpte' },
        width: 160,
        height: 120,
        fps: 5,
        bitrateKbps: 200,
        ringDir: join('/dev/shm', `bench-footage-memory-${process.pid}`),
      },
      recordMotion: false,
      store,
    },
    log: { level: 'warn' },
  };
  await writeFile(join(dir, 'doorbell.json'), JSON.stringify(config));
  const daemon = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'firmware/cli.ts'), 'run', '--config', join(dir, 'doorbell.json')],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const session = await openCommandSession({
    stateDir: hubState,
    broker: broker.url,
    tls: {},
    logger: silentLogger(),
    devices: await loadDevices(hubState),
    as: 'hub',
    connectTimeoutMs: 10_000,
    clientPurpose: 'bench',
  });
  try {
    // Ready: the media worker's pre-roll is full, so the store has long been loaded.
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error('the daemon never reported a full pre-roll')), 60_000);
      const on = (e: VerifiedEvent) => {
        if (e.event.mediaHealth?.state !== 'preroll-ready') return;
        clearTimeout(timer);
        session.watcher.off('event', on);
        res();
      };
      session.watcher.on('event', on);
    });
    await session.close();

    const runs: Run[] = [];
    for (const item of items) {
      const out = join(dir, `clip-${item.mb}.mp4`);
      const daemonRss = sampleRss(daemon.pid ?? 0);
      const t0 = process.hrtime.bigint();
      const cli = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'hub/cli.ts'),
          'clip',
          'get',
          item.id,
          '--device',
          DEVICE,
          '--identity',
          ownerFile,
          '-o',
          out,
          '--broker',
          broker.url,
          '--state-dir',
          hubState,
          '--timeout-ms',
          '60000',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      cli.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      const cliRss = sampleRss(cli.pid ?? 0, 20);
      await exited(cli);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const hub = await cliRss.stop();
      const dev = await daemonRss.stop();
      if (cli.exitCode !== 0) throw new Error(`clip get of ${item.mb} MiB failed: ${stderr}`);
      const got = await sha256File(out);
      if (got !== item.sha256) throw new Error(`clip get of ${item.mb} MiB wrote other bytes`);
      await rm(out);
      await rm(join(hubState, 'footage'), { recursive: true, force: true });
      runs.push({ mb: item.mb, ms, hubPeak: hub.hwm, daemonMax: dev.maxRss });
    }

    // Baseline: the stock age command decrypting the same ciphertext.
    const large = items.at(-1) as (typeof items)[number];
    const age = spawn('age', ['-d', '-i', ownerFile, '-o', '/dev/null', large.path], { stdio: 'inherit' });
    const ageRss = sampleRss(age.pid ?? 0, 5);
    await exited(age);
    const agePeak = (await ageRss.stop()).hwm;
    if (age.exitCode !== 0) throw new Error('age -d failed on the stored clip');

    const [first, ref, big] = runs as [Run, Run, Run];
    const hubGrowth = big.hubPeak - ref.hubPeak;
    const daemonGrowth = big.daemonMax - ref.daemonMax;
    return {
      metric: 'footage-memory',
      clip_mb: largeMb,
      reference_mb: ref.mb,
      fetch_ms: round3(big.ms),
      fetch_mb_s: round3(largeMb / (big.ms / 1000)),
      hub_peak_mb_first: round3(first.hubPeak),
      hub_peak_mb_reference: round3(ref.hubPeak),
      hub_peak_mb: round3(big.hubPeak),
      hub_growth_mb: round3(hubGrowth),
      daemon_max_rss_mb_first: round3(first.daemonMax),
      daemon_max_rss_mb_reference: round3(ref.daemonMax),
      daemon_max_rss_mb: round3(big.daemonMax),
      daemon_growth_mb: round3(daemonGrowth),
      baseline: 'age -d of the same ciphertext (VmHWM)',
      age_d_peak_mb: round3(agePeak),
      flat: hubGrowth <= FLAT_MB && daemonGrowth <= FLAT_MB,
      targets: { hub_growth_mb: FLAT_MB, daemon_growth_mb: FLAT_MB },
      machine: machine(),
    };
  } finally {
    await session.close().catch(() => undefined);
    daemon.kill('SIGTERM');
    await exited(daemon);
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Run {
  mb: number;
  ms: number;
  /** The hub CLI's VmHWM, MiB. */
  hubPeak: number;
  /** The daemon's largest VmRSS during the fetch, MiB. */
  daemonMax: number;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
