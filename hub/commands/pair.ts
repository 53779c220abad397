// `pair`: enrols the owner key, the hub key and the footage recipients on a doorbell whose pairing window is open.
import { MqttConnection } from '../../common/mqtt-connection.js';
import {
  CounterStore,
  type doorbell,
  loadOrCreateSigningKey,
  type PairingCode,
  publicKeyToText,
  topicsFor,
} from '../../proto/index.js';
import { isRole, ROLE_NAMES, roleName } from '../../proto/roles.js';
import { waitForBroker } from '../broker-wait.js';
import { hubClientId } from '../client-id.js';
import { EventWatcher } from '../event-watcher.js';
import { writeHubConfig } from '../hub-config.js';
import {
  addDevice,
  hubKeyPath,
  loadDevices,
  ownerCounterPath,
  ownerKeyPath,
  setDeviceHubRole,
} from '../hub-state.js';
import { PairingRefusedError, pairDevice } from '../pairing.js';
import type { Context } from './context.js';

/**
 * Shown when the first doorbell is paired with the owner key: it is the only key that can
 * manage the doorbell's keys, and a lost one means a factory reset.
 */
export function ownerKeyNotice(path: string): string {
  const rule = '='.repeat(78);
  return (
    `\n${rule}\n` +
    '  BACK UP THE OWNER KEY NOW\n\n' +
    `  ${path}\n\n` +
    '  This new key is the only one that can add or remove keys, change roles and\n' +
    '  footage recipients, open the pairing window and update the firmware of the\n' +
    '  doorbells paired with it. Without it, the only way back is a factory reset\n' +
    '  of each doorbell. Copy it somewhere offline (an encrypted USB stick, a\n' +
    '  password manager); anyone holding it controls your doorbells.\n' +
    `${rule}\n\n`
  );
}

/** What to do after a refused pairing, by the refusal's kind. */
export function pairingNextStep(errorKind: string): string | undefined {
  if (errorKind === 'PAIRING_WINDOW_CLOSED')
    return (
      'on a new doorbell, hold its button for 5 s (the LED double-blinks), then run pair again within 3 minutes; ' +
      'a doorbell that has an owner opens its window only when that owner runs `open-pairing <device-id>`'
    );
  if (errorKind === 'PAIRING_PROOF_INVALID')
    return 'check the code: it must be the one `npm run doorbell -- identity` prints on this doorbell, copied whole';
  return undefined;
}

export async function waitConnected(ctx: Context, connection: MqttConnection): Promise<void> {
  await waitForBroker(connection, ctx.broker, ctx.timeoutMs);
}

export async function pair(
  ctx: Context,
  code: PairingCode,
  options: { hubRole: doorbell.v1.Role | undefined; recipients: string[]; ownerLabel: string },
): Promise<number> {
  const { key: owner } = await loadOrCreateSigningKey(ownerKeyPath(ctx.stateDir));
  // The first doorbell paired is when the owner key starts to matter: say so then.
  const firstDoorbell = (await loadDevices(ctx.stateDir)).size === 0;
  const hub =
    options.hubRole === undefined ? undefined : (await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir))).key;
  const ownerCounters = await CounterStore.open(ownerCounterPath(ctx.stateDir));
  const connection = new MqttConnection({
    url: ctx.broker,
    clientId: hubClientId(ctx.tls, 'pair', 'unique'),
    logger: ctx.logger.child({ module: 'mqtt' }),
    subscriptions: [topicsFor(code.deviceId).evt],
    maximumPacketSize: EventWatcher.maxPacketBytes,
    tls: ctx.tls,
  });
  connection.start();
  try {
    await waitConnected(ctx, connection);
    const paired = await pairDevice(
      connection,
      {
        code,
        owner,
        ownerCounters,
        ownerLabel: options.ownerLabel,
        ...(hub && options.hubRole !== undefined
          ? { hub: { key: hub, role: options.hubRole, label: 'hub' } }
          : {}),
        recipients: options.recipients,
        timeoutMs: ctx.timeoutMs,
      },
      ctx.logger,
    );
    await addDevice(ctx.stateDir, code.deviceId, publicKeyToText(paired.deviceKey), true, paired.keyEpoch);
    if (firstDoorbell) process.stderr.write(ownerKeyNotice(ownerKeyPath(ctx.stateDir)));
    if (!ctx.hasConfigFile) {
      // The broker that just worked: later commands need no --broker.
      await writeHubConfig(ctx.configPath, { broker: ctx.broker, ...ctx.tls }, false);
      process.stderr.write(
        `saved the broker settings to ${ctx.configPath}; later commands need no --broker\n`,
      );
    }
    const hubEntry = hub && paired.keys.keys.find((k) => k.keyId === hub.keyId);
    if (hubEntry && isRole(hubEntry.role))
      await setDeviceHubRole(ctx.stateDir, code.deviceId, roleName(hubEntry.role));
    process.stdout.write(
      `paired ${code.deviceId}: its key ${paired.deviceKey.keyId} matches the pairing code and is pinned\n` +
        paired.keys.keys
          .map((k) => `  ${k.keyId}  ${ROLE_NAMES[(k.role ?? 1) - 1] ?? '?'}  ${k.label}\n`)
          .join('') +
        `footage recipients: ${paired.keys.footageRecipients.length}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof PairingRefusedError) {
      const next = pairingNextStep(err.errorKind);
      process.stderr.write(
        `doorbell-hub: the doorbell refused: ${err.message}\n${next ? `next: ${next}\n` : ''}`,
      );
      return 1;
    }
    throw err;
  } finally {
    await connection.stop();
    await ownerCounters.flush();
  }
}
