import { verify as verifySignature } from 'node:crypto';
import { isCorrelationId } from './correlation.js';
import { MAX_ENVELOPE_BYTES, maxEnvelopeBytes } from './envelope.js';
import { doorbell } from './gen/doorbell.js';
import { checkHeader, type HeaderFields } from './header.js';
import { type VerifyKey, verifyKeyFromRaw } from './keys.js';
import { COMMAND_KIND_FIELDS, EVENT_KIND_FIELDS, kindsIn } from './oneof.js';
import type { ReplayGuard } from './replay-guard.js';

/**
 * Opening: the receiver's checks, in this order, failing closed with a typed
 * VerifyError at the first that fails:
 *   1. size cap of the arrival topic (maxEnvelopeBytes: 16 KiB, 256 KiB on a
 *      device's `data` topic), before decoding anything   -> 'oversized'
 *   2. decode Envelope                                    -> 'undecodable'
 *      empty body or signature                            -> 'unsigned'
 *      signature not 64 bytes                             -> 'bad-signature'
 *   3. key_id names a key in ctx.keys                     -> 'unknown-key'
 *   4. Ed25519 signature over exactly the body bytes      -> 'bad-signature'
 *   5. decode body; header present and well-formed        -> 'undecodable'
 *   6. header.device_id == ctx.deviceId                   -> 'wrong-device'
 *   7. header.topic == ctx.topic                          -> 'wrong-topic'
 *   8. expires_at_ms > now                                -> 'expired'
 *      expires_at_ms - issued_at_ms <= maxLifetimeMs      -> 'expired'
 *      issued_at_ms <= now + maxClockSkewMs               -> 'not-yet-valid'
 *   9. exactly one `kind` is set                          -> 'undecodable'
 *  10. commands only, with ctx.replay: the counter is inside the key's
 *      window and not accepted before, then it is recorded -> 'replay'
 *      (a ReplayError); with ctx.replay, `now` is the guard's trusted time.
 *      openPairCommand checks the window but records nothing: its caller
 *      records only once the pairing proof verified.
 * Counters are bounded where the header is parsed (1 to MAX_COUNTER).
 * Nothing from the body is trusted, or echoed in a VerifyError, before step 4.
 */

export type RejectKind =
  | 'oversized'
  | 'undecodable'
  | 'unsigned'
  | 'unknown-key'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-device'
  | 'wrong-topic'
  | 'replay';

/** Why a message was rejected. Safe to log; `correlationId` is set only once the signature verified. */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  constructor(
    readonly kind: RejectKind,
    message: string,
    /** The authenticated correlation id, for a signed CommandResult reply. */
    readonly correlationId?: string,
  ) {
    super(`${kind}: ${message}`);
  }
}

/**
 * A command refused by the replay window. `decision` is 'replay' when the
 * same counter was accepted earlier in this run (a duplicate delivery, whose
 * result was already sent) and 'too-old' otherwise.
 */
export class ReplayError extends VerifyError {
  constructor(
    readonly decision: 'replay' | 'too-old',
    message: string,
    correlationId?: string,
    /** For 'too-old': the lowest counter the sender's key may use next. */
    readonly nextCounter?: number,
  ) {
    super('replay', message, correlationId);
  }
}

const ERROR_KINDS: { readonly [K in RejectKind]: doorbell.v1.ErrorKind } = {
  oversized: doorbell.v1.ErrorKind.OVERSIZED,
  undecodable: doorbell.v1.ErrorKind.UNDECODABLE,
  unsigned: doorbell.v1.ErrorKind.UNSIGNED,
  'unknown-key': doorbell.v1.ErrorKind.UNKNOWN_KEY,
  'bad-signature': doorbell.v1.ErrorKind.BAD_SIGNATURE,
  expired: doorbell.v1.ErrorKind.EXPIRED,
  'not-yet-valid': doorbell.v1.ErrorKind.NOT_YET_VALID,
  'wrong-device': doorbell.v1.ErrorKind.WRONG_DEVICE,
  'wrong-topic': doorbell.v1.ErrorKind.WRONG_TOPIC,
  replay: doorbell.v1.ErrorKind.REPLAY,
};

/** The wire ErrorKind for a reject kind (one to one). */
export function errorKindOf(kind: RejectKind): doorbell.v1.ErrorKind {
  return ERROR_KINDS[kind];
}

export const DEFAULT_MAX_CLOCK_SKEW_MS = 5000;
const SIGNATURE_BYTES = 64;

export interface VerifyContext {
  /** The receiving (commands) or expected sending (events) device. */
  deviceId: string;
  /** The MQTT topic the message arrived on. */
  topic: string;
  /** The receiver's clock, Unix milliseconds. */
  nowMs: number;
  /** Enrolled keys by key id. */
  keys: ReadonlyMap<string, VerifyKey>;
  /** How far in the future issued_at_ms may be; default 5000. */
  maxClockSkewMs?: number;
  /** Longest allowed expires_at_ms - issued_at_ms; unlimited when unset (the firmware sets 30000). */
  maxLifetimeMs?: number;
  /**
   * Commands only (openEvent ignores it): the replay window. openCommand then
   * uses `replay.trustedNowMs(nowMs)` as the time and records the counter of
   * every command it returns.
   */
  replay?: ReplayGuard;
}

interface Opened<M> {
  readonly message: M;
  readonly key: VerifyKey;
  readonly header: HeaderFields;
}

/** Opens an Envelope carrying a Command; throws VerifyError. */
export function openCommand(
  bytes: Uint8Array,
  ctx: VerifyContext,
): { command: doorbell.v1.Command & doorbell.v1.Command.$Shape; key: VerifyKey; header: HeaderFields } {
  const { replay } = ctx;
  if (replay === undefined) {
    const { message, key, header } = open(bytes, ctx, decodeCommand);
    return { command: message, key, header };
  }
  const opened = openUnrecorded(bytes, ctx, replay);
  // Step 10, after every other check: only an authentic, current command moves the window.
  replay.accept(opened.key.keyId, opened.header.counter, opened.header.issuedAtMs);
  return opened;
}

type OpenedCommand = {
  command: doorbell.v1.Command & doorbell.v1.Command.$Shape;
  key: VerifyKey;
  header: HeaderFields;
};

const decodeCommand = (body: Uint8Array) => doorbell.v1.Command.decode(body);

/** Every check of openCommand with a replay guard, including the window, without recording the counter. */
function openUnrecorded(bytes: Uint8Array, ctx: VerifyContext, replay: ReplayGuard): OpenedCommand {
  checkContext(ctx);
  const trusted = { ...ctx, nowMs: replay.trustedNowMs(ctx.nowMs) };
  const { message, key, header } = open(bytes, trusted, decodeCommand);
  const cid = header.correlationId || undefined;
  const decision = replay.check(key.keyId, header.counter, header.issuedAtMs);
  if (decision === 'replay') {
    throw new ReplayError(decision, `counter ${header.counter} was already accepted`, cid);
  }
  if (decision === 'too-old') {
    throw new ReplayError(
      decision,
      `counter ${header.counter} is outside the replay window (too old, or not above the mark kept across a restart)`,
      cid,
      replay.nextCounter(key.keyId),
    );
  }
  return { command: message, key, header };
}

/**
 * Opens a Pair command, which a device receives before it has any key to check
 * it with: the key is the owner key the command carries, and the envelope's
 * key_id must name it. Every other check is openCommand's, including the
 * replay window, but nothing is recorded: the signer is a stranger until the
 * pairing proof (proto/pairing.ts) verifies, and a stranger must not consume
 * durable state. The caller calls `record()` once the proof verified (it
 * throws ReplayGuardError when the guard cannot record).
 * Anything but a Pair command is 'unknown-key'.
 */
export function openPairCommand(
  bytes: Uint8Array,
  ctx: Omit<VerifyContext, 'keys'>,
): OpenedCommand & { record: () => void } {
  checkContext({ ...ctx, keys: new Map() });
  if (!(bytes instanceof Uint8Array)) throw new VerifyError('undecodable', 'payload is not bytes');
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    throw new VerifyError('oversized', `envelope is ${bytes.length} bytes, above ${MAX_ENVELOPE_BYTES}`);
  }
  let claimed: Uint8Array | null | undefined;
  try {
    const command = doorbell.v1.Command.decode(doorbell.v1.Envelope.decode(bytes).body ?? new Uint8Array());
    claimed = command.pair?.ownerPublicKey;
  } catch {
    throw new VerifyError('undecodable', 'envelope or body does not decode');
  }
  if (claimed == null || claimed.length === 0) {
    throw new VerifyError('unknown-key', 'key_id names no enrolled key, and this is not a Pair command');
  }
  let key: VerifyKey;
  try {
    key = verifyKeyFromRaw(claimed);
  } catch {
    throw new VerifyError('undecodable', 'pair.owner_public_key is not an Ed25519 public key');
  }
  const keyed = { ...ctx, keys: new Map([[key.keyId, key]]) };
  const { replay } = ctx;
  if (replay === undefined) return { ...openCommand(bytes, keyed), record: () => undefined };
  const opened = openUnrecorded(bytes, keyed, replay);
  return {
    ...opened,
    record: () => replay.accept(opened.key.keyId, opened.header.counter, opened.header.issuedAtMs),
  };
}

/** Opens an Envelope carrying an Event; throws VerifyError. */
export function openEvent(
  bytes: Uint8Array,
  ctx: VerifyContext,
): { event: doorbell.v1.Event & doorbell.v1.Event.$Shape; key: VerifyKey; header: HeaderFields } {
  const { message, key, header } = open(
    bytes,
    ctx,
    (body) => doorbell.v1.Event.decode(body),
    EVENT_KIND_FIELDS,
  );
  return { event: message, key, header };
}

function open<M extends { header?: doorbell.v1.Header.$Properties | null; kind?: string }>(
  bytes: Uint8Array,
  ctx: VerifyContext,
  decodeBody: (body: Uint8Array) => M,
  kindFields: ReadonlySet<number> = COMMAND_KIND_FIELDS,
): Opened<M> {
  const skew = checkContext(ctx);
  if (!(bytes instanceof Uint8Array)) throw new VerifyError('undecodable', 'payload is not bytes');
  const maxBytes = maxEnvelopeBytes(ctx.topic);
  if (bytes.length > maxBytes) {
    throw new VerifyError('oversized', `envelope is ${bytes.length} bytes, above ${maxBytes}`);
  }
  let envelope: doorbell.v1.Envelope;
  try {
    envelope = doorbell.v1.Envelope.decode(bytes);
  } catch {
    throw new VerifyError('undecodable', 'envelope does not decode');
  }
  const body = envelope.body ?? new Uint8Array();
  const signature = envelope.signature ?? new Uint8Array();
  if (body.length === 0 || signature.length === 0) {
    throw new VerifyError('unsigned', 'envelope has no body or no signature');
  }
  if (signature.length !== SIGNATURE_BYTES) {
    throw new VerifyError('bad-signature', `signature is ${signature.length} bytes, not ${SIGNATURE_BYTES}`);
  }

  const key = ctx.keys.get(envelope.keyId ?? '');
  if (key === undefined) throw new VerifyError('unknown-key', 'key_id names no enrolled key');
  let valid = false;
  try {
    valid = verifySignature(null, body, key.publicKey, signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new VerifyError('bad-signature', `signature does not verify with key ${key.keyId}`);

  // From here on the body is authenticated: its correlation id may be echoed.
  let message: M;
  try {
    message = decodeBody(body);
  } catch {
    throw new VerifyError('undecodable', 'body does not decode');
  }
  const checked = checkHeader(message.header);
  if (!checked.ok) {
    const cid = message.header?.correlationId;
    throw new VerifyError(
      'undecodable',
      checked.problem,
      isCorrelationId(cid) && cid !== '' ? cid : undefined,
    );
  }
  const { header } = checked;
  const cid = header.correlationId || undefined;
  if (header.deviceId !== ctx.deviceId) {
    throw new VerifyError('wrong-device', `addressed to ${header.deviceId}, not ${ctx.deviceId}`, cid);
  }
  if (header.topic !== ctx.topic)
    throw new VerifyError('wrong-topic', 'header.topic is not the arrival topic', cid);
  if (header.expiresAtMs <= ctx.nowMs) throw new VerifyError('expired', 'expires_at_ms has passed', cid);
  if (ctx.maxLifetimeMs !== undefined && header.expiresAtMs - header.issuedAtMs > ctx.maxLifetimeMs) {
    throw new VerifyError(
      'expired',
      `lifetime ${header.expiresAtMs - header.issuedAtMs} ms is above the maximum ${ctx.maxLifetimeMs} ms`,
      cid,
    );
  }
  if (header.issuedAtMs > ctx.nowMs + skew) {
    throw new VerifyError(
      'not-yet-valid',
      'issued_at_ms is further in the future than the allowed skew',
      cid,
    );
  }
  if (message.kind === undefined) throw new VerifyError('undecodable', 'no kind is set', cid);
  if (kindsIn(body, kindFields) > 1) {
    throw new VerifyError('undecodable', 'more than one kind is set', cid);
  }
  // Step 10 (replay window) is in openCommand.
  return { message, key, header };
}

/** A broken context is a programming error, not a bad message: a NaN clock would let expired messages through. */
function checkContext(ctx: VerifyContext): number {
  if (!Number.isSafeInteger(ctx.nowMs) || ctx.nowMs < 0) {
    throw new TypeError(`VerifyContext.nowMs must be a non-negative integer, got ${String(ctx.nowMs)}`);
  }
  const skew = ctx.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (!Number.isSafeInteger(skew) || skew < 0) {
    throw new TypeError(`VerifyContext.maxClockSkewMs must be a non-negative integer, got ${String(skew)}`);
  }
  if (
    ctx.maxLifetimeMs !== undefined &&
    (!Number.isSafeInteger(ctx.maxLifetimeMs) || ctx.maxLifetimeMs < 1)
  ) {
    throw new TypeError(
      `VerifyContext.maxLifetimeMs must be an integer >= 1, got ${String(ctx.maxLifetimeMs)}`,
    );
  }
  return skew;
}
