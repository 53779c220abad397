import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'mqtt';
import { writeBoardFiles } from '../flash/board.js';
import { keyMap } from '../flash/manifest.js';
import { commit, currentLink, installToInactiveSlot, switchToTrial } from '../flash/slots.js';
import { doorbell, loadSigningKey, publicKeyToText, topicsFor } from '../proto/index.js';
import { buildFirmwareBundle } from '../scripts/bundle-build.js';
import { startMosquitto } from '../test-support/mosquitto.js';
import { machine } from './machine.js';
import type { BenchArgs } from './run.js';
import { summary } from './stats.js';

/** A daemon started from a flashed slot. */
export interface SlotDaemon {
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM, SIGKILL after 5 s; resolves when it has exited. Safe to call twice. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `<root>/slots/current/doorbell.js run` with the sim HAL, as the unit
 * would (the same config file, state directory and entry point), with plain node.
 */
export function startSlotDaemon(root: string, brokerUrl: string, deviceId: string): SlotDaemon {
  const child = spawn(
    process.execPath,
    [
      join(currentLink(root), 'doorbell.js'),
      'run',
      '--config',
      join(root, 'etc', 'doorbell', 'config.json'),
      '--state-dir',
      join(root, 'state'),
      '--hal',
      'sim',
      '--broker',
      brokerUrl,
      '--device-id',
      deviceId,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOORBELL_LOG_LEVEL: 'warn' } },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** An ONLINE status: its envelope decoded and its device signature verified with the key in `stateDir`. */
export async function verifiedOnlineStatus(payload: Buffer, stateDir: string): Promise<boolean> {
  const envelope = doorbell.v1.Envelope.decode(payload);
  const event = doorbell.v1.Event.decode(envelope.body);
  if (event.status?.state !== doorbell.v1.Status.State.ONLINE) return false;
  const key = await loadSigningKey(join(stateDir, 'identity.pem'));
  return envelope.keyId === key.keyId && verify(null, envelope.body, key.publicKey, envelope.signature);
}

/**
 * Waits until `mosquitto_sub` (an independent client) reads a retained,
 * signed ONLINE status of `deviceId`: each try is a fresh subscription with
 * `--retained-only`, so only what the broker keeps counts. Resolves with the payload.
 */
export async function waitForRetainedOnline(
  port: number,
  deviceId: string,
  stateDir: string,
  timeoutMs = 15_000,
): Promise<Buffer> {
  const topic = topicsFor(deviceId).status;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const hex = await new Promise<string>((resolve) => {
      execFile(
        'mosquitto_sub',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-V',
          'mqttv5',
          '-t',
          topic,
          '--retained-only',
          '-C',
          '1',
          '-W',
          '1',
          '-F',
          '%x',
        ],
        { timeout: 5000 },
        (err, stdout, stderr) => {
          last = `${err?.message ?? ''} ${stderr}`;
          resolve(stdout.trim());
        },
      );
    });
    if (hex) {
      const payload = Buffer.from(hex, 'hex');
      if (await verifiedOnlineStatus(payload, stateDir).catch(() => false)) return payload;
      last = 'a retained status that is not a signed ONLINE one';
    }
    await sleep(50);
  }
  throw new Error(`no retained signed ONLINE status on ${topic} within ${timeoutMs} ms (${last.trim()})`);
}

const METHOD =
  'performance.now() at spawn of `node <slot>/doorbell.js run` (bundled, sim HAL) -> an in-process MQTT subscriber receives its signed ONLINE status; baseline: spawn -> exit of `node -e 0`, interleaved';

/**
 * Cold start of the bundled daemon to "online" (connected and its signed
 * status published, seen by a subscriber) against a bare `node -e 0` in the
 * same run. Builds a development bundle with a throw-away key, flashes it into
 * a temporary root, and starts the slot's daemon `--presses` times (at most 30).
 */
export async function bootBench(options: BenchArgs): Promise<Record<string, unknown>> {
  const runs = Math.min(Math.max(options.presses, 3), 30);
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-boot-bench-'));
  const broker = await startMosquitto();
  const subscriber = connect(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  try {
    const root = join(dir, 'root');
    const built = await buildFirmwareBundle({
      devKeyPath: join(dir, 'key', 'dev.pem'),
      hardware: 'open-doorbell/sim-x64',
      out: join(dir, 'fw.bundle'),
    });
    const trust = { keys: keyMap([built.key]), hardware: built.meta.hardware, allowDevelopment: true };
    const { slot } = await installToInactiveSlot(root, built.path, { trust });
    await switchToTrial(root, slot, { trust });
    await commit(root, { trust });
    await writeBoardFiles(root, {
      hardware: built.meta.hardware,
      releaseKeys: [publicKeyToText(built.key)],
      installPath: root,
      nodePath: process.execPath,
      slot,
    });
    if (!subscriber.connected) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('subscriber did not connect')), 10_000);
        subscriber.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        subscriber.once('error', reject);
      });
    }
    const deviceId = 'boot-bench';
    await subscriber.subscribeAsync(topicsFor(deviceId).status);
    let onOnline: (() => void) | undefined;
    subscriber.on('message', (_topic, payload, packet) => {
      if (packet.retain) return;
      try {
        const event = doorbell.v1.Event.decode(doorbell.v1.Envelope.decode(payload).body);
        if (event.status?.state === doorbell.v1.Status.State.ONLINE) onOnline?.();
      } catch {
        // not ours
      }
    });
    const startOnce = async (): Promise<number> => {
      const online = new Promise<void>((resolve) => {
        onOnline = resolve;
      });
      const t0 = performance.now();
      const daemon = startSlotDaemon(root, broker.url, deviceId);
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`daemon not online in 15 s: ${daemon.output()}`)), 15_000).unref(),
      );
      try {
        await Promise.race([online, timeout]);
        return performance.now() - t0;
      } finally {
        await daemon.stop();
      }
    };
    const bare = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const t0 = performance.now();
        const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
        child.once('error', reject);
        child.once('exit', () => resolve(performance.now() - t0));
      });
    await startOnce(); // first boot creates the identity; not measured
    await bare();
    const starts: number[] = [];
    const baselines: number[] = [];
    for (let i = 0; i < runs; i++) {
      starts.push(await startOnce());
      baselines.push(await bare());
    }
    const s = summary(starts);
    const b = summary(baselines);
    return {
      metric: 'boot_to_online_ms',
      start_ms: round(s.p50),
      baseline_ms: round(b.p50),
      ratio: round(s.p50 / b.p50),
      start_p90_ms: round(s.p90),
      runs,
      bundle_bytes: built.bytes,
      target_ms: 1000,
      method: METHOD,
      machine: machine(),
    };
  } finally {
    subscriber.end(true);
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const round = (x: number): number => Math.round(x * 10) / 10;
