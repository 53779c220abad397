import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, silentLogger } from '../common/logger.js';
import type { MqttConnection, TlsFiles } from '../common/mqtt-connection.js';
import { parseConfig } from '../firmware/config/load.js';
import type { DoorbellConfigInput } from '../firmware/config/schema.js';
import { type RunningDoorbell, startDoorbell } from '../firmware/root.js';
import { Commander } from '../hub/commander.js';
import type { EventWatcher, VerifiedEvent } from '../hub/event-watcher.js';
import { CounterStore, generateSigningKey, publicKeyToText, type SigningKey } from '../proto/index.js';
import { observeDevices } from './hub-observer.js';

export interface Harness {
  dir: string;
  hubKey: SigningKey;
  device: RunningDoorbell;
  hub: { connection: MqttConnection; watcher: EventWatcher; commander: Commander; events: VerifiedEvent[] };
  /** Resolves with the first verified event matching `match` (already received or future). */
  waitForEvent(
    match: (e: VerifiedEvent) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<VerifiedEvent>;
  /** Resolves once the sim chime line is off (at once if it is): a ring now is not refused as busy. */
  chimeOff(): Promise<void>;
  /**
   * Stops the doorbell, runs `meanwhile` (edit its state directory, as someone
   * holding the board's storage would), and starts it again on the same state;
   * `device` is the new one afterwards.
   */
  restartDevice(meanwhile?: (stateDir: string) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** The hub's TLS files (CA, client certificate and key) for an `mqtts://` broker. */
  hubTls?: TlsFiles;
}

/**
 * A doorbell (in-process, sim HAL) and a hub watcher/commander on one broker,
 * with the hub's key trusted by the device (unless `config.trust.hubKeys` says
 * otherwise) and the device's key pinned by the hub.
 * The device's own TLS files go in `config.broker` (`ca`, `cert`, `key`).
 */
export async function startHarness(
  brokerUrl: string,
  config: DoorbellConfigInput = {},
  hubKey: SigningKey = generateSigningKey(),
  options: HarnessOptions = {},
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-e2e-'));
  const parsed = parseConfig(
    {
      deviceId: 'front-door',
      ...config,
      stateDir: join(dir, 'device'),
      broker: { url: brokerUrl, reconnect: { minMs: 100, maxMs: 400 }, ...config.broker },
      trust: { hubKeys: [publicKeyToText(hubKey)], ...config.trust },
      hal: { backend: 'sim', ...config.hal },
    },
    'test',
  );
  const logger = process.env.DOORBELL_TEST_LOG
    ? createLogger({ level: 'debug', name: 'test' })
    : silentLogger();
  let device = await startDoorbell(parsed, { logger });
  const observer = observeDevices(
    brokerUrl,
    new Map([[device.deviceId, device.key]]),
    logger,
    options.hubTls,
  );
  const { connection, watcher, log } = observer;
  const counters = await CounterStore.open(join(dir, 'hub-counter'));
  const commander = new Commander({ connection, watcher, key: hubKey, counters, logger });

  return {
    dir,
    hubKey,
    get device() {
      return device;
    },
    hub: { connection, watcher, commander, events: log.events },
    waitForEvent: (match, timeoutMs, what) => log.waitFor(match, timeoutMs, what),
    chimeOff: () => device.hal.sim?.chimeOff() ?? Promise.resolve(),
    async restartDevice(meanwhile) {
      await device.stop();
      await meanwhile?.(parsed.stateDir);
      device = await startDoorbell(parsed, { logger });
    },
    async stop() {
      await Promise.allSettled([device.stop(), connection.stop()]);
      await counters.flush();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
