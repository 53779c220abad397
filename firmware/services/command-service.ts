import type { Logger } from '../../common/logger.js';
import type { Chime } from '../../hal/index.js';
import {
  devicePairingProof,
  doorbell,
  errorKindOf,
  fingerprintOf,
  type HeaderFields,
  isCorrelationId,
  MAX_PAIRING_NONCE_BYTES,
  MIN_PAIRING_NONCE_BYTES,
  openCommand,
  openPairCommand,
  pairingKey,
  pairingProof,
  pairingTranscript,
  proofMatches,
  ReplayError,
  type ReplayGuard,
  type VerifyContext,
  VerifyError,
  type VerifyKey,
  verifyKeyFromRaw,
} from '../../proto/index.js';
import type { PairingWindow } from '../trust/pairing-window.js';
import { ADMINISTER_MAX_LIFETIME_MS, COMMAND_ROLES, isRole, Role, roleName } from '../trust/roles.js';
import { TrustChangeError, type TrustStore } from '../trust/trust-store.js';
import type { UpdateAgent } from '../update/agent.js';
import type { EventBody } from './event-signer.js';
import type { RateLimit } from './rate-limit.js';
import type { DeviceSettings } from './settings.js';

export interface PairingDeps {
  window: PairingWindow;
  /** The 32-byte pairing secret (proto/pairing.ts). */
  secret: Uint8Array;
  /** The device's own public key: its fingerprint is in the transcript. */
  deviceKey: VerifyKey;
}

export interface CommandServiceDeps {
  deviceId: string;
  commandTopic: string;
  trust: TrustStore;
  /** Without it, Pair commands are refused (PAIRING_WINDOW_CLOSED). */
  pairing?: PairingDeps;
  settings?: DeviceSettings;
  chime: Chime;
  status: () => doorbell.v1.IStatus;
  /** Queues a signed result event that carries the command's correlation id. */
  reply: (body: EventBody, correlationId: string | undefined) => void;
  /** Queues another signed event (the KeysChanged audit records). */
  emit?: (body: EventBody) => void;
  errorReplies: RateLimit;
  nowMs: () => number;
  logger: Logger;
  /** The replay window and trusted clock (`<stateDir>/replay.json`); without it, counters are not checked. */
  replay?: ReplayGuard;
  /** Longest allowed command lifetime (expires_at_ms - issued_at_ms); default 30000. */
  maxCommandLifetimeMs?: number;
  /** Updates over MQTT; only on a flashed board (DOORBELL_ROOT). Without it OTA commands are UNSUPPORTED_COMMAND. */
  ota?: UpdateAgent;
}

export const DEFAULT_MAX_COMMAND_LIFETIME_MS = 30_000;

const { ErrorKind } = doorbell.v1;

type Opened = ReturnType<typeof openCommand>;
type Result = doorbell.v1.ICommandResult;

/**
 * Verifies, authorises and executes commands. Every command gets exactly one
 * signed result: ok, or a typed error. The checks, in order: the envelope
 * (proto/verify.ts, including the replay window), then the key epoch, then
 * the role the command needs (firmware/trust/roles.ts; Administer commands
 * also live at most 10 s), then the command's own arguments. A Pair command
 * is authorised by the pairing window and the pairing proof instead of a
 * role. Rejected input is logged and answered (at a bounded rate, so garbage
 * cannot make the device flood the broker); nothing here throws into the
 * MQTT client.
 *
 * Duplicates: a command whose counter was already accepted in this run (a QoS 1
 * redelivery) is dropped with a log line and no reply, because its result was
 * already sent; answering REPLAY would give the hub two results for one
 * correlation id. Other replay-window refusals (too old, or not above the mark
 * kept across a restart) get a signed REPLAY error like any other rejection.
 *
 * `handle` answers synchronously where it can (reads, the chime test); key
 * and settings changes answer once they are on disk. The promise it returns
 * settles when the answer is queued.
 */
export class CommandService {
  constructor(private readonly deps: CommandServiceDeps) {}

  handle(topic: string, payload: Uint8Array, retained: boolean): Promise<void> {
    const { logger } = this.deps;
    if (retained) {
      logger.warn({ topic, bytes: payload.length }, 'ignored a retained message on the command topic');
      return Promise.resolve();
    }
    const ctx: Omit<VerifyContext, 'keys'> = {
      deviceId: this.deps.deviceId,
      topic: this.deps.commandTopic,
      nowMs: this.deps.nowMs(),
      maxLifetimeMs: this.deps.maxCommandLifetimeMs ?? DEFAULT_MAX_COMMAND_LIFETIME_MS,
      ...(this.deps.replay ? { replay: this.deps.replay } : {}),
    };
    let opened: Opened;
    try {
      opened = openCommand(payload, { ...ctx, keys: this.deps.trust.keys });
    } catch (err) {
      if (!(err instanceof VerifyError && err.kind === 'unknown-key')) {
        this.reject(err, payload.length);
        return Promise.resolve();
      }
      // Not signed by an enrolled key: only a Pair command may go on.
      if (!this.deps.pairing?.window.isOpen) {
        if (looksLikePair(payload)) {
          logger.warn('pairing attempt while the pairing window is closed');
          this.replyError(
            ErrorKind.PAIRING_WINDOW_CLOSED,
            'the pairing window is closed',
            pairCorrelationId(payload),
          );
        } else {
          this.reject(err, payload.length);
        }
        return Promise.resolve();
      }
      try {
        opened = openPairCommand(payload, ctx);
      } catch (pairErr) {
        if (pairErr instanceof VerifyError && pairErr.kind === 'bad-signature')
          this.deps.pairing.window.recordFailure();
        this.reject(pairErr, payload.length);
        return Promise.resolve();
      }
    }
    return this.dispatch(opened).catch((err: unknown) => {
      logger.error({ err }, 'command handling failed');
    });
  }

  private dispatch({ command, key, header }: Opened): Promise<void> {
    const { logger, trust } = this.deps;
    const cid = header.correlationId || undefined;
    const kind = command.kind;
    const done = Promise.resolve();
    if (kind === undefined) {
      this.answer(failure(ErrorKind.UNSUPPORTED_COMMAND, 'no action'), cid);
      return done;
    }
    const needed = COMMAND_ROLES[kind];
    if (needed === 'pairing') {
      return this.pair(command, key, header).then((r) => this.answer(this.withDeviceKey(r), cid));
    }

    if (header.keyEpoch !== trust.epoch) {
      logger.warn(
        { keyId: key.keyId, named: header.keyEpoch, epoch: trust.epoch },
        'command refused: stale key epoch',
      );
      this.answer(
        failure(
          ErrorKind.STALE_EPOCH,
          `the command names key epoch ${header.keyEpoch}; the device is at ${trust.epoch}`,
        ),
        cid,
      );
      return done;
    }
    const role = trust.roleOf(key.keyId) ?? Role.ROLE_UNSPECIFIED;
    if (role < needed) {
      logger.warn({ keyId: key.keyId, kind, role, needed }, 'command refused: role too low');
      this.answer(
        failure(
          ErrorKind.UNAUTHORISED,
          `${kind} needs ${roleName(needed)}; key ${key.keyId} has ${roleLabel(role)}`,
        ),
        cid,
      );
      return done;
    }
    if (needed === Role.ADMINISTER && header.expiresAtMs - header.issuedAtMs > ADMINISTER_MAX_LIFETIME_MS) {
      this.answer(
        failure(ErrorKind.EXPIRED, `administer commands live at most ${ADMINISTER_MAX_LIFETIME_MS} ms`),
        cid,
      );
      return done;
    }
    logger.info({ kind, keyId: key.keyId, correlationId: header.correlationId }, 'command accepted');
    const failed = (err: unknown): Result => {
      if (err instanceof TrustChangeError) {
        logger.warn({ kind, reason: err.message }, 'command refused: invalid argument');
        return failure(ErrorKind.INVALID_ARGUMENT, err.message);
      }
      logger.error({ err, kind }, 'command failed');
      return failure(ErrorKind.INTERNAL, 'internal error');
    };
    let result: Result | Promise<Result>;
    try {
      result = this.execute(command, key);
    } catch (err) {
      result = failed(err);
    }
    if (!(result instanceof Promise)) {
      this.answer(result, cid); // reads and the chime test answer at once
      return done;
    }
    return result.then(
      (r) => this.answer(r, cid),
      (err: unknown) => this.answer(failed(err), cid),
    );
  }

  /** Synchronous for reads and the chime test; a promise for changes that are written to disk first. */
  private execute(command: doorbell.v1.Command, by: VerifyKey): Result | Promise<Result> {
    const { trust } = this.deps;
    switch (command.kind) {
      case 'ringChimeTest':
        return this.ringChimeTest();
      case 'getStatus':
        return { ok: true, status: this.deps.status() };
      case 'listKeys':
        return { ok: true, keys: this.keyList() };
      case 'addKey': {
        const c = command.addKey;
        return trust
          .add(c?.publicKey ?? new Uint8Array(), c?.role ?? 0, c?.label ?? '')
          .then((keyId) => this.changed('added', keyId, by));
      }
      case 'removeKey': {
        const keyId = command.removeKey?.keyId ?? '';
        return trust.remove(keyId).then(() => this.changed('removed', keyId, by));
      }
      case 'rotateKey': {
        const c = command.rotateKey;
        return trust
          .rotate(c?.keyId ?? '', c?.newPublicKey ?? new Uint8Array())
          .then((newKeyId) => this.changed('rotated', newKeyId, by));
      }
      case 'setRole': {
        const c = command.setRole;
        return trust
          .setRole(c?.keyId ?? '', c?.role ?? 0)
          .then(() => this.changed('role-changed', c?.keyId ?? '', by));
      }
      case 'setRecipients':
        return trust
          .setRecipients([...(command.setRecipients?.footageRecipients ?? [])])
          .then(() => this.changed('recipients-set', '', by));
      case 'openPairingWindow': {
        if (!this.deps.pairing) return failure(ErrorKind.UNSUPPORTED_COMMAND, 'pairing is not available');
        const seconds = command.openPairingWindow?.seconds || 180;
        if (seconds < 30 || seconds > 600) throw new TrustChangeError('the window is open 30 to 600 seconds');
        this.deps.pairing.window.open('command', seconds * 1000);
        return { ok: true };
      }
      case 'setChimeMuted':
        if (!this.deps.settings) return failure(ErrorKind.UNSUPPORTED_COMMAND, 'settings are not available');
        return this.deps.settings
          .setChimeMuted(command.setChimeMuted?.muted === true)
          .then(() => ({ ok: true, status: this.deps.status() }));
      case 'otaBegin':
      case 'otaChunk':
      case 'otaApply':
      case 'otaGetState':
        return this.ota(command);
      case 'pair':
      case undefined:
        return failure(ErrorKind.UNSUPPORTED_COMMAND, 'the command names no action');
      default: {
        const unknown: never = command.kind;
        return failure(ErrorKind.UNSUPPORTED_COMMAND, `unsupported command ${String(unknown)}`);
      }
    }
  }

  private ota(command: doorbell.v1.Command): Result | Promise<Result> {
    const { ota } = this.deps;
    if (!ota) {
      return failure(
        ErrorKind.UNSUPPORTED_COMMAND,
        'updates over MQTT need a flashed board: this daemon does not run from one (DOORBELL_ROOT unset) or cannot read its trust files',
      );
    }
    switch (command.kind) {
      case 'otaBegin':
        return ota.begin(command.otaBegin);
      case 'otaChunk':
        return ota.chunk(command.otaChunk);
      case 'otaApply':
        return ota.apply(command.otaApply);
      default:
        return ota.getState();
    }
  }

  /** The window is open and the envelope verified with the key the command carries; now the proof. */
  private async pair(command: doorbell.v1.Command, owner: VerifyKey, header: HeaderFields): Promise<Result> {
    const { pairing, trust, logger } = this.deps;
    const p = command.pair;
    if (!pairing?.window.isOpen || p == null)
      return failure(ErrorKind.PAIRING_WINDOW_CLOSED, 'the pairing window is closed');
    const fingerprint = fingerprintOf(pairing.deviceKey.publicRaw);
    const key = pairingKey(pairing.secret, fingerprint);
    const transcript = pairingTranscript(header, fingerprint, p);
    const nonce = p.nonce?.length ?? 0;
    if (
      nonce < MIN_PAIRING_NONCE_BYTES ||
      nonce > MAX_PAIRING_NONCE_BYTES ||
      !proofMatches(pairingProof(key, transcript), p.proof)
    ) {
      pairing.window.recordFailure();
      logger.warn(
        { failures: pairing.window.current.failures, keyId: owner.keyId },
        'pairing proof did not verify',
      );
      return failure(ErrorKind.PAIRING_PROOF_INVALID, 'the pairing proof does not verify');
    }
    let hub: { key: VerifyKey; role: Role; label: string } | undefined;
    try {
      if (p.hubPublicKey != null && p.hubPublicKey.length > 0) {
        const role = p.hubRole ?? Role.OPERATE;
        if (!isRole(role)) throw new TrustChangeError('hub_role must be view, operate, manage or administer');
        hub = { key: verifyKeyFromRaw(p.hubPublicKey), role, label: p.hubLabel || 'hub' };
      }
      await trust.pair({
        owner,
        ownerLabel: p.ownerLabel || 'owner',
        ...(hub ? { hub } : {}),
        recipients: [...(p.footageRecipients ?? [])],
      });
    } catch (err) {
      pairing.window.recordFailure();
      const message =
        err instanceof TrustChangeError ? err.message : `pairing failed: ${(err as Error).message}`;
      logger.warn({ reason: message }, 'pairing refused');
      return failure(ErrorKind.INVALID_ARGUMENT, message);
    }
    pairing.window.close('paired');
    logger.info({ owner: owner.keyId, hub: hub?.key.keyId }, 'paired');
    this.deps.emit?.({
      keysChanged: { change: 'paired', keyId: owner.keyId, byKeyId: owner.keyId, keyEpoch: trust.epoch },
    });
    return {
      ok: true,
      paired: {
        devicePublicKey: pairing.deviceKey.publicRaw,
        deviceProof: devicePairingProof(key, transcript),
        keys: this.keyList(),
      },
    };
  }

  private changed(change: string, keyId: string, by: VerifyKey): Result {
    const keyEpoch = this.deps.trust.epoch;
    this.deps.logger.info({ change, keyId, by: by.keyId, keyEpoch }, 'keys changed');
    this.deps.emit?.({ keysChanged: { change, keyId, byKeyId: by.keyId, keyEpoch } });
    return { ok: true, keys: this.keyList() };
  }

  private keyList(): doorbell.v1.IKeyList {
    const { trust } = this.deps;
    return {
      keys: trust.list().map((k) => ({
        keyId: k.key.keyId,
        publicKey: k.key.publicRaw,
        role: k.role,
        label: k.label,
        source: k.source,
      })),
      footageRecipients: [...trust.recipients],
      keyEpoch: trust.epoch,
    };
  }

  private ringChimeTest(): Result {
    try {
      const result = this.deps.chime.ring();
      if (result.started) return { ok: true };
      return failure(ErrorKind.BUSY, `chime did not ring: ${result.reason ?? 'unknown'}`);
    } catch (err) {
      this.deps.logger.error({ err }, 'chime test failed');
      return failure(ErrorKind.HARDWARE, (err as Error).message);
    }
  }

  private answer(result: Result, correlationId: string | undefined): void {
    this.deps.reply({ commandResult: { ...result, keyEpoch: this.deps.trust.epoch } }, correlationId);
  }

  private reject(err: unknown, bytes: number): void {
    const { logger } = this.deps;
    if (!(err instanceof VerifyError)) {
      logger.error({ err }, 'command verification failed unexpectedly');
      this.replyError(ErrorKind.INTERNAL, 'internal error', undefined);
      return;
    }
    if (err instanceof ReplayError && err.decision === 'replay') {
      logger.info(
        { correlationId: err.correlationId, reason: err.message },
        'dropped a duplicate of an accepted command',
      );
      return;
    }
    logger.warn({ kind: err.kind, bytes, reason: err.message }, 'command rejected');
    const next = err instanceof ReplayError ? err.nextCounter : undefined;
    this.replyError(errorKindOf(err.kind), err.message, err.correlationId, next);
  }

  private replyError(
    kind: doorbell.v1.ErrorKind,
    message: string,
    correlationId: string | undefined,
    nextCounter?: number,
  ): void {
    if (!this.deps.errorReplies.tryTake()) {
      this.deps.logger.debug('error reply suppressed by rate limit');
      return;
    }
    const result = this.withDeviceKey(failure(kind, message));
    this.answer(nextCounter === undefined ? result : { ...result, nextCounter }, correlationId);
  }

  /** Pairing answers carry the device key, so that a hub that only has the pairing code can verify them. */
  private withDeviceKey(result: Result): Result {
    const { pairing } = this.deps;
    if (!pairing || result.ok || !PAIRING_ERRORS.has(result.errorKind ?? 0)) return result;
    return { ...result, paired: { devicePublicKey: pairing.deviceKey.publicRaw } };
  }
}

const PAIRING_ERRORS = new Set<doorbell.v1.ErrorKind>([
  ErrorKind.PAIRING_WINDOW_CLOSED,
  ErrorKind.PAIRING_PROOF_INVALID,
]);

function failure(kind: doorbell.v1.ErrorKind, message: string): Result {
  return { ok: false, errorKind: kind, errorMessage: message.slice(0, 200) };
}

function roleLabel(role: Role): string {
  return role === Role.ROLE_UNSPECIFIED ? 'no role' : roleName(role);
}

/** An unauthenticated peek, used only to choose the error for a closed window. */
function looksLikePair(payload: Uint8Array): boolean {
  return peekCommand(payload)?.kind === 'pair';
}

/**
 * The correlation id of an unauthenticated Pair command, echoed in the
 * closed-window answer so the sender can match it. Echoing it reveals
 * nothing: the sender chose it.
 */
function pairCorrelationId(payload: Uint8Array): string | undefined {
  const cid = peekCommand(payload)?.header?.correlationId;
  return typeof cid === 'string' && isCorrelationId(cid) && cid !== '' ? cid : undefined;
}

function peekCommand(payload: Uint8Array): doorbell.v1.Command | undefined {
  try {
    const body = doorbell.v1.Envelope.decode(payload).body;
    return body == null ? undefined : doorbell.v1.Command.decode(body);
  } catch {
    return undefined;
  }
}
