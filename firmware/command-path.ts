import { join } from 'node:path';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { Chime } from '../hal/index.js';
import { type doorbell, ReplayGuard, type SigningKey, topicsFor, verifyKeyOf } from '../proto/index.js';
import { type AuditReader, CommandService } from './services/command-service.js';
import type { EventBody } from './services/event-signer.js';
import type { FootageService } from './services/footage-service.js';
import { RateLimit } from './services/rate-limit.js';
import { DeviceSettings } from './services/settings.js';
import { loadOrCreatePairingSecret } from './trust/pairing-secret.js';
import { PairingWindow, type PairingWindowState } from './trust/pairing-window.js';
import { type ConfiguredKey, TrustStore } from './trust/trust-store.js';
import type { UpdateAgent } from './update/agent.js';

export interface CommandPathOptions {
  stateDir: string;
  deviceId: string;
  /** The device's identity: its fingerprint is in the pairing transcript. */
  deviceKey: SigningKey;
  /** Keys from the config file (`trust.hubKeys` with `trust.hubRole`). */
  configuredKeys: ConfiguredKey[];
  chime: Chime;
  logger: Logger;
  nowMs: () => number;
  /** Runs the pairing window's deadline; default the system clock. */
  clock?: Clock;
  /** The monotonic clock trusted time advances with; default performance.now. */
  monoMs?: () => number;
  /** How long a button hold opens the pairing window. */
  pairingWindowMs: number;
  errorRepliesPerS: number;
  /** Answers a second to one enrolled key (see CommandServiceDeps.keyRepliesPerS). */
  keyRepliesPerS?: number;
  /** Queues a signed event durably (the outbox): results and audit events. */
  emit: (body: EventBody, correlationId?: string) => void;
  /** Sends a signed answer to a sender that is not enrolled, never durably. */
  notify: (body: EventBody, correlationId: string | undefined) => void;
  status: () => doorbell.v1.IStatus;
  /** Every change of the pairing window, after it is logged and emitted (the LED). */
  onWindowChange?: (state: Readonly<PairingWindowState>) => void;
  /** Updates over MQTT, on a flashed board. */
  ota?: UpdateAgent;
  /** Listing and fetching stored footage. */
  footage?: FootageService;
  audit?: AuditReader;
}

/**
 * Everything between a command's bytes and its effect, with the durable state
 * it reads and writes: the enrolled keys (`enrolment.json`, `key-epoch`),
 * the pairing secret, the settings, the replay window and trusted clock
 * (`replay.json`), the pairing window and the command service. The board
 * daemon (firmware/root.ts) and the stateful fuzzer (bench/fuzz/) both build
 * it here, so that what the fuzzer attacks is what runs.
 */
export interface CommandPath {
  readonly trust: TrustStore;
  readonly replay: ReplayGuard;
  readonly settings: DeviceSettings;
  readonly pairingWindow: PairingWindow;
  readonly commands: CommandService;
  /** The button was held: opens the pairing window on a doorbell without an owner. */
  onHold(): void;
  /** Closes the pairing window and writes the exact replay marks. */
  close(): void;
}

export async function openCommandPath(o: CommandPathOptions): Promise<CommandPath> {
  const { logger, nowMs } = o;
  const trust = await TrustStore.open(o.stateDir, o.configuredKeys, { logger, nowMs });
  const secret = await loadOrCreatePairingSecret(o.stateDir);
  const settings = await DeviceSettings.open(o.stateDir, logger);
  if (!trust.isPaired) {
    logger.warn('no owner is paired: hold the button to open the pairing window (see `doorbell identity`)');
  }
  const replay = await ReplayGuard.open(join(o.stateDir, 'replay.json'), {
    isLive: (keyId) => trust.keys.has(keyId),
    ...(o.monoMs ? { monoMs: o.monoMs } : {}),
    nowMs,
  });
  if (replay.corruption !== undefined) {
    logger.error(
      { problem: replay.corruption, path: replay.path },
      'replay state was corrupt: refusing commands issued before this start until the hub sets new marks',
    );
  }
  const pairingWindow = new PairingWindow({
    nowMs,
    ...(o.clock ? { clock: o.clock } : {}),
    onChange: (state) => {
      logger.info(state, state.open ? 'pairing window open' : 'pairing window closed');
      o.onWindowChange?.(state);
      o.emit({ pairingWindow: state });
    },
  });
  const commands = new CommandService({
    deviceId: o.deviceId,
    commandTopic: topicsFor(o.deviceId).cmd,
    trust,
    pairing: { window: pairingWindow, secret, deviceKey: verifyKeyOf(o.deviceKey) },
    settings,
    chime: o.chime,
    status: o.status,
    reply: o.emit,
    notify: o.notify,
    emit: o.emit,
    errorReplies: new RateLimit(o.errorRepliesPerS, nowMs),
    ...(o.keyRepliesPerS === undefined ? {} : { keyRepliesPerS: o.keyRepliesPerS }),
    nowMs,
    logger: logger.child({ module: 'commands' }),
    replay,
    ...(o.ota ? { ota: o.ota } : {}),
    ...(o.footage ? { footage: o.footage } : {}),
    ...(o.audit ? { audit: o.audit } : {}),
  });
  return {
    trust,
    replay,
    settings,
    pairingWindow,
    commands,
    onHold() {
      if (trust.isPaired) {
        logger.info(
          'button held on a paired doorbell: the pairing window stays closed (an Administer opens it)',
        );
        return;
      }
      if (trust.problem !== undefined) {
        logger.error('button held, but the stored enrolment is damaged: factory-reset first');
        return;
      }
      pairingWindow.open('button', o.pairingWindowMs);
    },
    close() {
      pairingWindow.close('stopped');
      try {
        replay.close();
      } catch (err) {
        logger.error({ err }, 'could not write the exact replay marks; the reserved ones stay');
      }
    },
  };
}
