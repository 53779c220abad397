import type { Logger } from '../../common/logger.js';
import type { Chime } from '../../hal/index.js';
import { failure } from '../../proto/command-result.js';
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
import { ADMINISTER_MAX_LIFETIME_MS, COMMAND_ROLES, isRole, Role, roleName } from '../../proto/roles.js';
import type { PairingWindow } from '../trust/pairing-window.js';
import { TrustChangeError, type TrustStore } from '../trust/trust-store.js';
import type { UpdateAgent } from '../update/agent.js';
import type { EventBody } from './event-signer.js';
import type { FootageService } from './footage-service.js';
import { RateLimit } from './rate-limit.js';
import type { DeviceSettings } from './settings.js';
import { shareRecord } from './share-record.js';

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
  /**
   * Sends a signed answer without queuing it durably (dropped while offline):
   * for refusals of senders that are not enrolled, which must not consume the
   * outbox. Without it, `reply` is used.
   */
  notify?: (body: EventBody, correlationId: string | undefined) => void;
  /** Queues another signed event (the KeysChanged audit records). */
  emit?: (body: EventBody) => void;
  errorReplies: RateLimit;
  /**
   * Answers a second to one enrolled key below Administer, and error answers a second to any
   * enrolled key (default 20): commands beyond it are dropped unanswered, with a log line.
   */
  keyRepliesPerS?: number;
  /** Refusals logged per second at most (default 20); the next line logged counts the others. */
  refusalLogsPerS?: number;
  nowMs: () => number;
  logger: Logger;
  /** The replay window and trusted clock (`<stateDir>/replay.json`); without it, counters are not checked. */
  replay?: ReplayGuard;
  /** Longest allowed command lifetime (expires_at_ms - issued_at_ms); default 30000. */
  maxCommandLifetimeMs?: number;
  /** Updates over MQTT; only on a flashed board (DOORBELL_ROOT). Without it OTA commands are UNSUPPORTED_COMMAND. */
  ota?: UpdateAgent;
  /** Listing and fetching stored footage. Without it the footage commands are UNSUPPORTED_COMMAND. */
  footage?: FootageService;
  /** The audit log, for GetAudit. Without it GetAudit is UNSUPPORTED_COMMAND. */
  audit?: AuditReader;
}

/** What GetAudit reads of the audit log (firmware/audit-log.ts). */
export interface AuditReader {
  page(from: number, maxBytes: number): string[];
  checkpoint(): string;
  /** A C2SP tlog-proof of entry `index` against a checkpoint signed now. */
  proof(index: number): string;
  /** A checkpoint signed now and a consistency proof to it from each size; RangeError for a size beyond the log. */
  consistency(fromSizes: readonly number[]): { checkpoint: string; proofs: Uint8Array[][] };
  /** Appends an entry; resolves with its index once it is on disk. */
  append(event: string, data: Record<string, string | number | boolean | undefined>): Promise<number>;
  readonly size: number;
}

/** Sizes one GetAuditConsistency names at most: with their proofs the answer fits the 16 KiB envelope. */
export const MAX_CONSISTENCY_SIZES = 8;

/** Entry bytes a GetAudit page holds at most: with the checkpoint it fits the 16 KiB envelope. */
export const AUDIT_PAGE_BYTES = 12 * 1024;

export const DEFAULT_MAX_COMMAND_LIFETIME_MS = 30_000;
export const DEFAULT_REFUSAL_LOGS_PER_S = 20;
/** Answers a second (with bursts as large) to one key below Administer, and error answers to any key. */
export const DEFAULT_KEY_REPLIES_PER_S = 20;
/** Budgets kept at most; those of keys no longer enrolled go first. */
const MAX_KEY_BUDGETS = 256;

const { ErrorKind } = doorbell.v1;

type Opened = ReturnType<typeof openCommand> & {
  /** Pair commands: records the counter once the proof verified (see openPairCommand). */
  record?: () => void;
};
type Result = doorbell.v1.ICommandResult;

/**
 * Verifies, authorises and executes commands. Every command gets exactly one
 * signed result: ok, or a typed error. The checks, in order: the envelope
 * (proto/verify.ts, including the replay window), then the key epoch, then
 * the role the command needs (proto/roles.ts; Administer commands
 * also live at most 10 s), then the command's own arguments. A Pair command
 * is authorised by the pairing window and the pairing proof instead of a
 * role. Rejected input is logged and answered (both at a bounded rate, so
 * garbage cannot make the device flood the broker or its log); nothing here
 * throws into the MQTT client. Refusals of senders that are not enrolled
 * (before the signature verified, or a stranger's Pair) are answered through
 * `notify`, so they never take room in the durable outbox.
 *
 * Trusted time: only an Administer key's command confirms the trusted clock
 * (proto/trusted-clock.ts), and confirming never moves it ahead.
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
  private readonly refusalLogs: RateLimit;
  private unloggedRefusals = 0;
  private readonly keyBudgets = new Map<string, RateLimit>();

  constructor(private readonly deps: CommandServiceDeps) {
    this.refusalLogs = new RateLimit(deps.refusalLogsPerS ?? DEFAULT_REFUSAL_LOGS_PER_S, deps.nowMs);
  }

  /** Never throws and never rejects: whatever one message does, the next one is handled. */
  handle(topic: string, payload: Uint8Array, retained: boolean): Promise<void> {
    try {
      return this.handleMessage(topic, payload, retained).catch((err: unknown) => {
        this.deps.logger.error({ err, bytes: payload.length }, 'command handling failed');
      });
    } catch (err) {
      this.deps.logger.error({ err, bytes: payload.length }, 'command handling failed');
      return Promise.resolve();
    }
  }

  private handleMessage(topic: string, payload: Uint8Array, retained: boolean): Promise<void> {
    if (retained) {
      this.logRefusal({ topic, bytes: payload.length }, 'ignored a retained message on the command topic');
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
        this.reject(err, payload);
        return Promise.resolve();
      }
      // Not signed by an enrolled key: only a Pair command may go on.
      if (!this.deps.pairing?.window.isOpen) {
        if (looksLikePair(payload)) {
          this.logRefusal({ reason: 'window closed' }, 'pairing attempt while the pairing window is closed');
          this.replyError(
            ErrorKind.PAIRING_WINDOW_CLOSED,
            'the pairing window is closed',
            pairCorrelationId(payload),
            { stranger: true },
          );
        } else {
          this.reject(err, payload);
        }
        return Promise.resolve();
      }
      try {
        opened = openPairCommand(payload, ctx);
      } catch (pairErr) {
        if (pairErr instanceof VerifyError && pairErr.kind === 'bad-signature')
          this.deps.pairing.window.recordFailure();
        this.reject(pairErr, payload, { stranger: true });
        return Promise.resolve();
      }
    }
    return this.dispatch(opened);
  }

  private dispatch({ command, key, header, record }: Opened): Promise<void> {
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
      // An enrolled key's Pair was recorded by openCommand already.
      return this.pair(command, key, header, record ?? (() => undefined)).then((r) => {
        if (r.ok) this.answer(r, cid);
        else this.answerStranger(this.withDeviceKey(r), cid);
      });
    }

    const role = trust.roleOf(key.keyId) ?? Role.ROLE_UNSPECIFIED;
    // Every answer to a key below Administer counts against that key's budget, so no
    // enrolled key can fill the outbox (where presses wait) or starve the others.
    if (role !== Role.ADMINISTER && !this.keyBudget(key.keyId)) {
      this.logRefusal({ keyId: key.keyId, kind }, 'command dropped: the key is over its rate');
      return done;
    }
    if (header.keyEpoch !== trust.epoch) {
      this.logRefusal(
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
    if (role < needed) {
      this.logRefusal({ keyId: key.keyId, kind, role, needed }, 'command refused: role too low');
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
    if (role === Role.ADMINISTER) this.confirmTime(header.issuedAtMs);
    // Reads are frequent and change nothing: at debug level, so a reader cannot flood the log.
    const level = needed === Role.VIEW ? 'debug' : 'info';
    logger[level]({ kind, keyId: key.keyId, correlationId: header.correlationId }, 'command accepted');
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
      result = this.execute(command, key, header.correlationId);
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
  private execute(
    command: doorbell.v1.Command,
    by: VerifyKey,
    correlationId: string,
  ): Result | Promise<Result> {
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
      case 'listItems':
        return this.deps.footage?.list(command.listItems, by.keyId) ?? noFootage();
      case 'deleteItems':
        return this.deps.footage?.delete(command.deleteItems, by.keyId) ?? noFootage();
      case 'recordShare': {
        const audit = this.deps.audit;
        if (!audit) return failure(ErrorKind.UNSUPPORTED_COMMAND, 'no audit log');
        const record = shareRecord(command.recordShare);
        if (typeof record === 'string') return failure(ErrorKind.INVALID_ARGUMENT, record);
        return audit.append(record.event, record.data).then((index) => ({ ok: true, auditIndex: index }));
      }
      case 'getAuditProof': {
        const audit = this.deps.audit;
        if (!audit) return failure(ErrorKind.UNSUPPORTED_COMMAND, 'no audit log');
        const index = Number(command.getAuditProof?.index ?? 0);
        if (index >= audit.size) return failure(ErrorKind.NOT_FOUND, `the log has ${audit.size} entries`);
        return { ok: true, auditProof: audit.proof(index) };
      }
      case 'getAuditConsistency': {
        const audit = this.deps.audit;
        if (!audit) return failure(ErrorKind.UNSUPPORTED_COMMAND, 'no audit log');
        const sizes = (command.getAuditConsistency?.fromSizes ?? []).map(Number);
        if (sizes.length < 1 || sizes.length > MAX_CONSISTENCY_SIZES)
          return failure(ErrorKind.INVALID_ARGUMENT, `name 1 to ${MAX_CONSISTENCY_SIZES} sizes`);
        const beyond = sizes.find((s) => s > audit.size);
        if (beyond !== undefined)
          return failure(ErrorKind.INVALID_ARGUMENT, `the log has ${audit.size} entries, not ${beyond}`);
        const { checkpoint, proofs } = audit.consistency(sizes);
        return {
          ok: true,
          auditConsistency: {
            checkpoint,
            proofs: proofs.map((hashes, i) => ({ fromSize: sizes[i] ?? 0, hashes })),
          },
        };
      }
      case 'getAudit': {
        const audit = this.deps.audit;
        if (!audit) return failure(ErrorKind.UNSUPPORTED_COMMAND, 'no audit log');
        const from = Number(command.getAudit?.from ?? 0);
        if (from > audit.size)
          return failure(ErrorKind.INVALID_ARGUMENT, `the log has ${audit.size} entries`);
        return {
          ok: true,
          audit: { from, entries: audit.page(from, AUDIT_PAGE_BYTES), checkpoint: audit.checkpoint() },
        };
      }
      case 'fetchItem':
        return this.deps.footage?.fetch(command.fetchItem, correlationId, by.keyId) ?? noFootage();
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

  /**
   * The window is open and the envelope verified with the key the command
   * carries; now the proof. A verified proof claims the window, so that
   * exactly one pairing happens per window; the enrolment is written, and
   * only once it succeeded is the counter recorded.
   */
  private async pair(
    command: doorbell.v1.Command,
    owner: VerifyKey,
    header: HeaderFields,
    record: () => void,
  ): Promise<Result> {
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
      this.logRefusal(
        { failures: pairing.window.current.failures, keyId: owner.keyId },
        'pairing proof did not verify',
      );
      return failure(ErrorKind.PAIRING_PROOF_INVALID, 'the pairing proof does not verify');
    }
    if (!pairing.window.claim()) {
      return failure(ErrorKind.PAIRING_WINDOW_CLOSED, 'the pairing window is closed');
    }
    let hub: { key: VerifyKey; role: Role; label: string } | undefined;
    let enrolled: { keyId: string; role: Role }[];
    try {
      if (p.hubPublicKey != null && p.hubPublicKey.length > 0) {
        const role = p.hubRole ?? Role.OPERATE;
        if (!isRole(role)) throw new TrustChangeError('hub_role must be view, operate, manage or administer');
        hub = { key: verifyKeyFromRaw(p.hubPublicKey), role, label: p.hubLabel || 'hub' };
      }
      enrolled = await trust.pair({
        owner,
        ownerLabel: p.ownerLabel || 'owner',
        ...(hub ? { hub } : {}),
        recipients: [...(p.footageRecipients ?? [])],
      });
    } catch (err) {
      pairing.window.release('failed');
      if (err instanceof TrustChangeError) {
        logger.warn({ reason: err.message }, 'pairing refused');
        return failure(ErrorKind.INVALID_ARGUMENT, err.message);
      }
      logger.error({ err }, 'pairing failed');
      return failure(ErrorKind.INTERNAL, 'internal error');
    }
    pairing.window.release('paired');
    // Only now is the pairer enrolled, and only an enrolled key's counter is kept. Should the
    // mark not be written, a replay of this Pair still meets a closed window.
    try {
      record();
    } catch (err) {
      logger.error({ err }, 'could not record the Pair command in the replay window');
    }
    logger.info({ owner: owner.keyId, hub: hub?.key.keyId, enrolled }, 'paired');
    // Every enrolment is reported, with its role, to whoever watches the device (its existing owners too).
    for (const k of enrolled) {
      this.deps.emit?.({
        keysChanged: {
          change: 'paired',
          keyId: k.keyId,
          byKeyId: owner.keyId,
          keyEpoch: trust.epoch,
          role: k.role,
        },
      });
    }
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
    this.send(this.deps.reply, result, correlationId);
  }

  /** An answer to a sender that is not enrolled: never queued durably. */
  private answerStranger(result: Result, correlationId: string | undefined): void {
    this.send(this.deps.notify ?? this.deps.reply, result, correlationId);
  }

  /** Signs and hands over an answer; a result that cannot be sealed is answered INTERNAL instead. */
  private send(
    via: (body: EventBody, correlationId: string | undefined) => void,
    result: Result,
    correlationId: string | undefined,
  ): void {
    const keyEpoch = this.deps.trust.epoch;
    try {
      via({ commandResult: { ...result, keyEpoch } }, correlationId);
    } catch (err) {
      this.deps.logger.error({ err, correlationId }, 'could not sign the answer; answering INTERNAL');
      try {
        via({ commandResult: { ...failure(ErrorKind.INTERNAL, 'internal error'), keyEpoch } }, correlationId);
      } catch (again) {
        this.deps.logger.error({ err: again, correlationId }, 'could not sign an INTERNAL answer either');
      }
    }
  }

  /** Raises the trusted clock's floor to an Administer's signed issue time (never ahead of trusted time). */
  private confirmTime(issuedAtMs: number): void {
    try {
      this.deps.replay?.confirmTime(issuedAtMs, this.deps.nowMs());
    } catch (err) {
      this.deps.logger.error({ err }, 'could not persist the trusted time');
    }
  }

  /** A refusal's log line, at most refusalLogsPerS a second; the next line logged counts the ones that were not. */
  private logRefusal(fields: Record<string, unknown>, message: string): void {
    if (!this.refusalLogs.tryTake()) {
      this.unloggedRefusals += 1;
      return;
    }
    const unlogged = this.unloggedRefusals;
    this.unloggedRefusals = 0;
    this.deps.logger.warn(unlogged > 0 ? { ...fields, unloggedRefusals: unlogged } : fields, message);
  }

  private reject(err: unknown, payload: Uint8Array, options: { stranger?: boolean } = {}): void {
    const { logger } = this.deps;
    if (!(err instanceof VerifyError)) {
      logger.error({ err }, 'command verification failed unexpectedly');
      this.replyError(ErrorKind.INTERNAL, 'internal error', undefined, options);
      return;
    }
    if (err instanceof ReplayError && err.decision === 'replay') {
      this.logRefusal(
        { correlationId: err.correlationId, reason: err.message },
        'dropped a duplicate of an accepted command',
      );
      return;
    }
    this.logRefusal({ kind: err.kind, bytes: payload.length, reason: err.message }, 'command rejected');
    // Before the signature verified there is no correlation id, and no enrolled sender.
    const stranger = options.stranger === true || err.correlationId === undefined;
    const next = err instanceof ReplayError ? err.nextCounter : undefined;
    if (stranger) {
      this.replyError(errorKindOf(err.kind), err.message, err.correlationId, { stranger, nextCounter: next });
      return;
    }
    // Signed by an enrolled key (the signature verified): answered within that key's own budget,
    // so that a flood from anyone else never silences the answer its sender needs (a REPLAY
    // naming the next counter, say).
    if (!this.keyBudget(signerOf(payload))) return;
    const result = failure(errorKindOf(err.kind), err.message);
    this.answer(next === undefined ? result : { ...result, nextCounter: next }, err.correlationId);
  }

  /** Takes one answer from `keyId`'s budget (keyRepliesPerS a second). */
  private keyBudget(keyId: string): boolean {
    let budget = this.keyBudgets.get(keyId);
    if (budget === undefined) {
      if (this.keyBudgets.size >= MAX_KEY_BUDGETS) {
        for (const id of this.keyBudgets.keys())
          if (!this.deps.trust.keys.has(id)) this.keyBudgets.delete(id);
      }
      budget = new RateLimit(this.deps.keyRepliesPerS ?? DEFAULT_KEY_REPLIES_PER_S, this.deps.nowMs);
      if (this.keyBudgets.size < MAX_KEY_BUDGETS) this.keyBudgets.set(keyId, budget);
    }
    return budget.tryTake();
  }

  private replyError(
    kind: doorbell.v1.ErrorKind,
    message: string,
    correlationId: string | undefined,
    options: { stranger?: boolean; nextCounter?: number | undefined } = {},
  ): void {
    if (!this.deps.errorReplies.tryTake()) return;
    const result = this.withDeviceKey(failure(kind, message));
    const full = options.nextCounter === undefined ? result : { ...result, nextCounter: options.nextCounter };
    if (options.stranger) this.answerStranger(full, correlationId);
    else this.answer(full, correlationId);
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

/** The key id of an envelope whose signature already verified. */
function signerOf(payload: Uint8Array): string {
  try {
    return doorbell.v1.Envelope.decode(payload).keyId ?? '';
  } catch {
    return '';
  }
}

function peekCommand(payload: Uint8Array): doorbell.v1.Command | undefined {
  try {
    const body = doorbell.v1.Envelope.decode(payload).body;
    return body == null ? undefined : doorbell.v1.Command.decode(body);
  } catch {
    return undefined;
  }
}

function noFootage(): Result {
  return failure(ErrorKind.UNSUPPORTED_COMMAND, 'this doorbell records no footage');
}
