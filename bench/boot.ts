import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { startMosquitto } from '../broker/local-mosquitto.js';
import { doorbell, topicsFor } from '../proto/index.js';
import { startSlotDaemon } from '../test-support/slot-daemon.js';
import { flashedRoot } from './flashed-root.js';
import { machine } from './machine.js';
import type { BenchArgs } from './run.js';
import { summary } from './stats.js';

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
    const { root, bundleBytes } = await flashedRoot(dir);
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
      bundle_bytes: bundleBytes,
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
