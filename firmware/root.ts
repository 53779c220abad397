import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Clock, systemClock, within } from '../common/clock.js';
import { writeFileDurably } from '../common/durable-file.js';
import type { Logger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt-connection.js';
import { maxPublishPacketBytes } from '../common/mqtt-frames.js';
import { createHal, type Hal } from '../hal/index.js';
import {
  CounterStore,
  doorbell,
  loadOrCreateSigningKey,
  MAX_ENVELOPE_BYTES,
  publicKeyFromText,
  type SigningKey,
  topicsFor,
} from '../proto/index.js';
import { roleFromName } from '../proto/roles.js';
import { AuditLog } from './audit-log.js';
import { type CommandPath, openCommandPath } from './command-path.js';
import type { DoorbellConfig } from './config/schema.js';
import { auditRecordOf } from './services/audit-entries.js';
import { DeviceChannel } from './services/device-channel.js';
import { DoorbellService } from './services/doorbell-service.js';
import { type EventBody, EventSigner } from './services/event-signer.js';
import { FootageService } from './services/footage-service.js';
import { type MediaBridge, startMediaBridge } from './services/media-bridge.js';
import { Outbox } from './services/outbox.js';
import type { TrustStore } from './trust/trust-store.js';
import { mqttHealthProbe, openUpdates } from './update/index.js';
import { FIRMWARE_VERSION } from './version.js';

export interface RunningDoorbell {
  readonly deviceId: string;
  readonly key: SigningKey;
  readonly hal: Hal;
  readonly outbox: Outbox;
  readonly trust: TrustStore;
  /** The media worker's pid while it runs (media enabled). */
  readonly mediaWorkerPid: number | undefined;
  /** Path of the sim wire socket, when the sim backend exposes one. */
  readonly simSocket: string | undefined;
  /**
   * Before a factory reset wipes the state: logs it, signs the audit log's
   * last checkpoint (which says so) and waits, at most `FINAL_EVENTS_WAIT_MS`,
   * for the broker to take every queued event, that checkpoint included.
   */
  announceFactoryReset(): Promise<void>;
  stop(): Promise<void>;
}

/** How long a factory reset waits for its last events to reach the broker. */
export const FINAL_EVENTS_WAIT_MS = 3_000;

export interface StartOptions {
  logger: Logger;
  nowMs?: () => number;
  /** Every timer of the daemon (hardware, pairing window, outbox, channel, camera); default the system clock. */
  clock?: Clock;
  /**
   * Called when the button was held for trust.factoryResetHoldMs from
   * start-up. The caller stops this daemon, wipes the state (factory-reset.ts)
   * and starts afresh. Without it, the hold is only logged.
   */
  onFactoryResetHold?: () => void;
  /** The flashed board's root (DOORBELL_ROOT): enables updates over MQTT (firmware/update/). */
  doorbellRoot?: string;
  /** After an update switched slots or a trial rolled back: stop and exit 75 (firmware/update/). */
  onRestart?: (reason: string) => void;
}

/** A press that begins this soon after start-up and lasts factoryResetHoldMs resets the doorbell. */
export const FACTORY_RESET_BOOT_WINDOW_MS = 10_000;

/** Where the identity key lives in a state directory. */
export const identityPath = (stateDir: string): string => join(stateDir, 'identity.pem');

/** Where the sim board's wires are served (`doorbell sim` connects there). */
export const simSocketPath = (config: DoorbellConfig): string =>
  config.hal.sim.socket ?? join(config.stateDir, 'sim-wires.sock');

/** The device id: configured, or derived from the identity key. */
export const deviceIdFor = (config: DoorbellConfig, key: SigningKey): string =>
  config.deviceId ?? `doorbell-${key.keyId.slice(0, 8)}`;

/**
 * The composition root of the board daemon. Start order puts the ring path
 * first: hardware, then button -> chime, and only then the network. Stop
 * order is the reverse.
 */
export async function startDoorbell(config: DoorbellConfig, options: StartOptions): Promise<RunningDoorbell> {
  const { logger } = options;
  const nowMs = options.nowMs ?? Date.now;
  const clock = options.clock ?? systemClock;
  const startedAt = nowMs();
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory's mode alone: keys and secrets live here.
  await chmod(config.stateDir, 0o700);
  const { key, created } = await loadOrCreateSigningKey(identityPath(config.stateDir));
  const deviceId = deviceIdFor(config, key);
  const topics = topicsFor(deviceId);
  logger.info({ deviceId, keyId: key.keyId, created, version: FIRMWARE_VERSION }, 'identity loaded');
  await writeFileDurably(join(config.stateDir, 'daemon.pid'), `${process.pid}\n`, 0o600);
  const configuredKeys = config.trust.hubKeys.map((text) => ({
    key: publicKeyFromText(text),
    role: roleFromName(config.trust.hubRole),
  }));
  const counters = await CounterStore.open(join(config.stateDir, 'event-counter'));
  const simSocket = config.hal.backend === 'sim' ? simSocketPath(config) : undefined;
  const hal = await createHal(config.hal, { logger, simSocketPath: simSocket, clock });

  const signer = new EventSigner({
    deviceId,
    key,
    counters,
    nowMs,
    ttlMs: config.events.ttlS * 1000,
    keyEpoch: () => path.trust.epoch,
  });
  const outbox = Outbox.open(join(config.stateDir, 'outbox'), {
    max: config.events.outboxMax,
    logger: logger.child({ module: 'outbox' }),
    clock,
    dropReport: ({ count, oldestDroppedCounter }) => ({
      topic: topics.evt,
      payload: signer.seal(topics.evt, { eventsDropped: { count, oldestDroppedCounter } }),
      retain: false,
    }),
    counterOf: (entry) => {
      try {
        const { body } = doorbell.v1.Envelope.decode(entry.payload);
        return doorbell.v1.Event.decode(body).header?.counter ?? undefined;
      } catch {
        return undefined;
      }
    },
  });
  const emit = (body: EventBody, correlationId?: string): void => {
    outbox.push({ topic: topics.evt, payload: signer.seal(topics.evt, body, correlationId), retain: false });
    const entry = auditRecordOf(body);
    if (entry) record(entry.event, entry.data);
  };
  // The transparency log of what was done with keys, footage and firmware; its signed
  // checkpoints go to the hub as events.
  const audit = await AuditLog.open(config.stateDir, {
    deviceId,
    key,
    nowMs,
    clock,
    logger: logger.child({ module: 'audit' }),
    onCheckpoint: (note) => emit({ auditCheckpoint: { note } }),
  });
  const record = (event: string, data: Record<string, string | number | boolean | undefined>): void => {
    audit
      .append(event, data)
      .catch((err: unknown) => logger.error({ err, event }, 'audit entry not written'));
  };

  const setLed = (state: Parameters<typeof hal.led.set>[0]): void => {
    try {
      hal.led.set(state);
    } catch (err) {
      logger.warn({ err }, 'status LED failed');
    }
  };
  const ota =
    options.doorbellRoot === undefined
      ? undefined
      : await openUpdates({
          root: options.doorbellRoot,
          stateDir: config.stateDir,
          config: config.ota,
          logger: logger.child({ module: 'update' }),
          nowMs,
          clock,
          emit,
          audit,
          outboxEmpty: () => outbox.whenEmpty(),
          onRestart: options.onRestart,
        });
  /** Set once the camera has started (media.enabled); presses before that have no clip. */
  let media: MediaBridge | undefined;
  /** The clip store could not start: footage commands are then UNSUPPORTED, not BUSY. */
  let mediaFailed = false;
  const footage = new FootageService({
    store: () => media?.store ?? (config.media.enabled && !mediaFailed ? 'starting' : undefined),
    // Chunks go straight to the broker, never through the outbox: a fetch is repeated, not replayed.
    sendChunk: async (chunk, correlationId) => {
      await connection.publish(topics.data, signer.seal(topics.data, { itemChunk: chunk }, correlationId), {
        qos: 1,
      });
    },
    ringPathIdle: () => outbox.whenEmpty(),
    logger: logger.child({ module: 'footage' }),
    audit: record,
  });
  const path: CommandPath = await openCommandPath({
    stateDir: config.stateDir,
    deviceId,
    deviceKey: key,
    configuredKeys,
    chime: hal.chime,
    logger,
    nowMs,
    clock,
    pairingWindowMs: config.trust.pairingWindowS * 1000,
    errorRepliesPerS: config.commands.errorRepliesPerS,
    keyRepliesPerS: config.commands.keyRepliesPerS,
    emit,
    // Refusals of strangers leave at QoS 0 and only while connected: never in the durable outbox.
    notify: (body, correlationId) => {
      if (!connection.connected) return;
      connection
        .publish(topics.evt, signer.seal(topics.evt, body, correlationId), { qos: 0 })
        .catch((err: unknown) => logger.debug({ err: String(err) }, 'refusal not sent'));
    },
    status: () => status(doorbell.v1.Status.State.ONLINE),
    onWindowChange: (state) => setLed(state.open ? 'pairing' : 'off'),
    ...(ota ? { ota } : {}),
    footage,
    audit,
  });
  const { trust, settings, pairingWindow, commands } = path;
  const doorbellService = new DoorbellService({
    button: hal.button,
    chime: hal.chime,
    led: hal.led,
    emit,
    nowMs,
    clock,
    logger: logger.child({ module: 'doorbell' }),
    isMuted: () => settings.chimeMuted,
    onPress: (atMs) => media?.onPress(atMs) ?? {},
    onHold: () => path.onHold(),
  });
  doorbellService.start();
  const stopResetWatch = watchFactoryResetHold(hal, {
    holdMs: config.trust.factoryResetHoldMs,
    startedAt: nowMs(),
    nowMs,
    logger,
    onReset: () => {
      logger.warn('button held since start-up: factory reset requested');
      setLed('blink-fast');
      options.onFactoryResetHold?.();
    },
  });

  const status = (state: doorbell.v1.Status.State): doorbell.v1.IStatus => ({
    state,
    firmwareVersion: FIRMWARE_VERSION,
    uptimeS: Math.floor((nowMs() - startedAt) / 1000),
    halBackend: config.hal.backend,
    chimeMode: hal.chime.mode,
    pressesSinceBoot: doorbellService.pressesSinceBoot,
    outboxDepth: outbox.depth,
    paired: trust.isPaired,
    keyEpoch: trust.epoch,
    pairingWindowOpen: pairingWindow.isOpen,
    chimeMuted: settings.chimeMuted,
  });
  const statusMessage = (state: doorbell.v1.Status.State) => ({
    topic: topics.status,
    payload: signer.seal(topics.status, { status: status(state) }),
  });

  const connection = new MqttConnection({
    url: config.broker.url,
    clientId: deviceId,
    logger: logger.child({ module: 'mqtt' }),
    keepaliveS: config.broker.keepaliveS,
    backoff: config.broker.reconnect,
    subscriptions: [topics.cmd],
    // The broker sends the daemon only commands: one signed envelope each, at most MAX_ENVELOPE_BYTES.
    maximumPacketSize: maxPublishPacketBytes(Buffer.byteLength(topics.cmd), MAX_ENVELOPE_BYTES),
    will: () => ({ ...statusMessage(doorbell.v1.Status.State.OFFLINE), qos: 1, retain: true }),
    tls: { ca: config.broker.ca, cert: config.broker.cert, key: config.broker.key },
    username: config.broker.username,
    password: config.broker.password,
  });
  connection.on('message', (topic, payload, packet) => {
    if (topic === topics.cmd) void commands.handle(topic, payload, packet.retain);
  });
  const channel = new DeviceChannel({
    connection,
    outbox,
    onlineStatus: () => statusMessage(doorbell.v1.Status.State.ONLINE),
    heartbeatMs: config.events.heartbeatS * 1000,
    ackTimeoutMs: config.broker.ackTimeoutMs,
    clock,
    logger: logger.child({ module: 'channel' }),
  });
  channel.start();
  ota
    ?.checkTrial(mqttHealthProbe(connection, topics.evt, (body) => signer.seal(topics.evt, body)))
    .catch((err: unknown) => logger.error({ err }, 'update health check failed'));

  // The camera comes last: the ring path and the network never wait for it.
  if (config.media.enabled) {
    try {
      media = await startMediaBridge(config, {
        recipients: () => trust.recipients,
        emit,
        audit: record,
        logger,
        nowMs,
        clock,
      });
      // The sim board's light (a rig's lamp) lights the sim camera's scene.
      const sim = hal.sim;
      if (sim !== undefined) {
        media.setLight(sim.lightState());
        sim.onLight((on) => media?.setLight(on));
      }
    } catch (err) {
      mediaFailed = true;
      logger.error({ err }, 'the clip store could not start: no clips are recorded');
      emit({ mediaHealth: { state: 'config-error', detail: (err as Error).message.slice(0, 200) } });
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping');
      ota?.close();
      await footage.stop();
      await media?.stop().catch((err: unknown) => logger.error({ err }, 'media stop failed'));
      stopResetWatch();
      pairingWindow.close('stopped');
      await channel.stop(() => statusMessage(doorbell.v1.Status.State.OFFLINE));
      doorbellService.stop();
      await hal.close();
      await audit.flush().catch((err: unknown) => logger.error({ err }, 'audit checkpoint not written'));
      await counters.flush();
      outbox.close();
      path.close();
      await rm(join(config.stateDir, 'daemon.pid'), { force: true });
      logger.info({ undelivered: outbox.depth }, 'stopped');
    })();
    return stopping;
  };
  return {
    deviceId,
    key,
    hal,
    outbox,
    simSocket,
    trust,
    async announceFactoryReset() {
      await audit.append('device.factory-reset', {});
      await audit.close('factory-reset');
      await within(outbox.whenEmpty(), FINAL_EVENTS_WAIT_MS, clock);
    },
    get mediaWorkerPid() {
      return media?.workerPid;
    },
    stop,
  };
}

/**
 * A press that begins within FACTORY_RESET_BOOT_WINDOW_MS of start-up and is
 * held for `holdMs` calls `onReset` (once). A release before then cancels it.
 */
function watchFactoryResetHold(
  hal: Hal,
  options: { holdMs: number; startedAt: number; nowMs: () => number; logger: Logger; onReset: () => void },
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let fired = false;
  const unsubscribe = hal.button.subscribe((event) => {
    if (
      event.type === 'press' &&
      !fired &&
      options.nowMs() - options.startedAt <= FACTORY_RESET_BOOT_WINDOW_MS
    ) {
      timer = setTimeout(() => {
        fired = true;
        options.onReset();
      }, options.holdMs);
    } else if (event.type === 'release' && timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
  });
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    unsubscribe();
  };
}
