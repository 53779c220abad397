import type { Logger } from '../common/logger.js';
import { MqttConnection, type TlsFiles } from '../common/mqtt-connection.js';
import {
  CounterStore,
  type doorbell,
  loadOrCreateSigningKey,
  parseDeviceTopic,
  type VerifyKey,
} from '../proto/index.js';
import { ADMINISTER_MAX_LIFETIME_MS, COMMAND_ROLES, type CommandKind, Role } from '../proto/roles.js';
import { waitForBroker } from './broker-wait.js';
import { hubClientId } from './client-id.js';
import { type CommandBody, Commander } from './commander.js';
import { EventWatcher } from './event-watcher.js';
import { hubCounterPath, hubKeyPath, ownerCounterPath, ownerKeyPath, trackedKeyEpochs } from './hub-state.js';

export interface SessionOptions {
  stateDir: string;
  broker: string;
  tls: TlsFiles;
  logger: Logger;
  /** The pinned devices whose events are verified. */
  devices: ReadonlyMap<string, VerifyKey>;
  /** Sign with the owner key (Administer) or the hub key; the owner's commands live the Administer maximum (proto/roles.ts). */
  as: 'owner' | 'hub';
  /** How long to wait for the broker. */
  connectTimeoutMs: number;
  /** What the connection is for, in its client id (see `hubClientId`); '' for a single command. */
  clientPurpose: string;
  /** Topics subscribed to besides events and status (a fetch: the device's `data` topic). */
  extraSubscriptions?: string[];
}

export interface CommandSession {
  readonly commander: Commander;
  readonly watcher: EventWatcher;
  /** Sends one command to `deviceId` and resolves with its verified result. */
  send(deviceId: string, body: CommandBody, timeoutMs: number): Promise<doorbell.v1.CommandResult>;
  /** Saves learnt key epochs, disconnects, flushes the counter. */
  close(): Promise<void>;
}

/**
 * A connected hub that sends signed commands and verifies their results:
 * the chosen key and its counter, the key epochs this hub knows, an event
 * watcher over the pinned devices. Used by `doorbell-hub` for single
 * commands and for `ota push`.
 */
/**
 * How long a command lives: the Administer maximum (proto/roles.ts) for one that needs
 * Administer, whichever key signs it, and for everything the owner key signs.
 */
export function lifetimeMs(body: CommandBody, owner: boolean): number | undefined {
  const kind = (Object.keys(body) as CommandKind[]).find((k) => body[k] != null);
  const needsAdminister = kind !== undefined && COMMAND_ROLES[kind] === Role.ADMINISTER;
  return owner || needsAdminister ? ADMINISTER_MAX_LIFETIME_MS : undefined;
}

export async function openCommandSession(o: SessionOptions): Promise<CommandSession> {
  const owner = o.as === 'owner';
  const epochs = await trackedKeyEpochs(o.stateDir);
  const { key } = await loadOrCreateSigningKey(owner ? ownerKeyPath(o.stateDir) : hubKeyPath(o.stateDir));
  const counters = await CounterStore.open(owner ? ownerCounterPath(o.stateDir) : hubCounterPath(o.stateDir));
  const watcher = new EventWatcher(o.devices, o.logger.child({ module: 'watcher' }));
  const connection = new MqttConnection({
    url: o.broker,
    clientId: hubClientId(o.tls, o.clientPurpose, 'unique'),
    logger: o.logger.child({ module: 'mqtt' }),
    subscriptions: [...EventWatcher.subscriptions, ...(o.extraSubscriptions ?? [])],
    // Only a connection that fetches footage (a device's data topic) accepts the larger chunks.
    maximumPacketSize: (o.extraSubscriptions ?? []).some((t) => parseDeviceTopic(t)?.channel === 'data')
      ? EventWatcher.maxDataPacketBytes
      : EventWatcher.maxPacketBytes,
    tls: o.tls,
  });
  connection.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
  const commander = new Commander({
    connection,
    watcher,
    key,
    counters,
    logger: o.logger,
    keyEpochOf: epochs.keyEpochOf,
    onKeyEpoch: epochs.onKeyEpoch,
  });
  const close = async (): Promise<void> => {
    await epochs.saved();
    await connection.stop();
    await counters.flush();
  };
  connection.start();
  try {
    await waitForBroker(connection, o.broker, o.connectTimeoutMs);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    commander,
    watcher,
    send: async (deviceId, body, timeoutMs) =>
      (await commander.send(deviceId, body, timeoutMs, { ttlMs: lifetimeMs(body, owner) })).result,
    close,
  };
}
