import type { Logger } from '../common/logger.js';
import type { MqttConnection } from '../common/mqtt-connection.js';
import { ReplyWaiter } from '../common/reply-waiter.js';
import {
  type CounterStore,
  devicePairingProof,
  doorbell,
  fingerprintOf,
  type HeaderFields,
  newCorrelationId,
  openEvent,
  type PairingCode,
  proofMatches,
  type SigningKey,
  sealPairCommand,
  topicsFor,
  VerifyError,
  type VerifyKey,
  verifyKeyFromRaw,
} from '../proto/index.js';
import { CommandTimeoutError } from './commander.js';

/** Pair commands live this long: the device's window is open for minutes, the exchange takes a second. */
const PAIR_TTL_MS = 10_000;

export interface PairRequest {
  code: PairingCode;
  owner: SigningKey;
  ownerCounters: CounterStore;
  ownerLabel: string;
  hub?: { key: VerifyKey; role: doorbell.v1.Role; label: string };
  recipients: string[];
  timeoutMs: number;
  nowMs?: () => number;
}

export interface Paired {
  /** The device key, checked against the fingerprint in the pairing code: pin it. */
  deviceKey: VerifyKey;
  keys: doorbell.v1.KeyList;
  keyEpoch: number;
}

/** The device answered, verifiably, but refused. */
export class PairingRefusedError extends Error {
  override readonly name = 'PairingRefusedError';
  constructor(
    readonly errorKind: string,
    message: string,
  ) {
    super(`${errorKind}: ${message}`);
  }
}

/**
 * The hub's side of pairing (proto/pairing.ts): sends a Pair command signed
 * by the owner key, with a proof over the transcript, and waits for the
 * device's answer. The answer is trusted only if the public key in it has
 * the fingerprint from the pairing code, the envelope verifies with that key,
 * and (on success) the device's own proof over the same transcript verifies.
 * `connection` must already be subscribed to the device's event topic.
 */
export async function pairDevice(
  connection: MqttConnection,
  request: PairRequest,
  logger: Logger,
): Promise<Paired> {
  const { code } = request;
  const topics = topicsFor(code.deviceId);
  const nowMs = request.nowMs ?? Date.now;
  const issuedAtMs = nowMs();
  const header: HeaderFields = {
    deviceId: code.deviceId,
    topic: topics.cmd,
    counter: request.ownerCounters.next(),
    issuedAtMs,
    expiresAtMs: issuedAtMs + PAIR_TTL_MS,
    correlationId: newCorrelationId(),
    keyEpoch: 0,
  };
  const { payload, key, transcript } = sealPairCommand({
    header,
    pair: {
      ownerLabel: request.ownerLabel,
      ...(request.hub
        ? { hubPublicKey: request.hub.key.publicRaw, hubRole: request.hub.role, hubLabel: request.hub.label }
        : {}),
      footageRecipients: request.recipients,
    },
    owner: request.owner,
    secret: code.secret,
    fingerprint: code.fingerprint,
  });

  const cid = header.correlationId;
  const waiter = new ReplyWaiter<string, Paired>({
    timeoutError: (_what, _id, ms) =>
      new CommandTimeoutError(
        `no answer from ${code.deviceId} within ${ms} ms: is its pairing window open (hold the button 5 s)?`,
      ),
  });
  const onMessage = (topic: string, bytes: Uint8Array): void => {
    if (topic !== topics.evt) return;
    let outcome: Paired | PairingRefusedError | undefined;
    try {
      outcome = readAnswer(bytes, topic, cid, code, key, transcript, nowMs());
    } catch (err) {
      logger.warn(
        { reason: (err as Error).message },
        'ignored an unverifiable answer to the pairing request',
      );
      return;
    }
    if (outcome === undefined) return;
    if (outcome instanceof PairingRefusedError) waiter.fail(cid, outcome);
    else waiter.deliver(cid, outcome);
  };
  const answer = waiter
    .wait(cid, 'pair', request.timeoutMs)
    .finally(() => connection.off('message', onMessage));
  answer.catch(() => undefined); // observed by the caller's await; here only kept from being unhandled
  connection.on('message', onMessage);
  logger.debug({ deviceId: code.deviceId, correlationId: header.correlationId }, 'sending pairing request');
  try {
    await connection.publish(topics.cmd, payload, { qos: 1 });
  } catch (err) {
    // Not sent, or the connection closed before the PUBACK: no answer is awaited any more.
    waiter.cancel(cid);
    connection.off('message', onMessage);
    throw err;
  }
  return answer;
}

/** undefined: not the answer to this request. Throws when it claims to be but does not verify. */
function readAnswer(
  bytes: Uint8Array,
  topic: string,
  correlationId: string,
  code: PairingCode,
  key: Buffer,
  transcript: Buffer,
  nowMs: number,
): Paired | PairingRefusedError | undefined {
  // Unauthenticated peek, to find the device key the answer names; nothing
  // from it is used before the full verification below.
  let claimed: Uint8Array | null | undefined;
  try {
    const event = doorbell.v1.Event.decode(doorbell.v1.Envelope.decode(bytes).body ?? new Uint8Array());
    if (event.header?.correlationId !== correlationId || event.kind !== 'commandResult') return undefined;
    claimed = event.commandResult?.paired?.devicePublicKey;
  } catch {
    return undefined;
  }
  if (claimed == null || claimed.length === 0) throw new Error('the answer carries no device key');
  if (fingerprintOf(claimed) !== code.fingerprint) {
    throw new Error('the answering key does not have the fingerprint in the pairing code');
  }
  const deviceKey = verifyKeyFromRaw(claimed);
  let opened: ReturnType<typeof openEvent>;
  try {
    opened = openEvent(bytes, {
      deviceId: code.deviceId,
      topic,
      nowMs,
      keys: new Map([[deviceKey.keyId, deviceKey]]),
    });
  } catch (err) {
    throw new Error(`the answer does not verify: ${err instanceof VerifyError ? err.message : String(err)}`);
  }
  const result = opened.event.commandResult;
  if (!result) return undefined;
  if (!result.ok) {
    const kind = doorbell.v1.ErrorKind[result.errorKind ?? 0] ?? 'INTERNAL';
    return new PairingRefusedError(kind, result.errorMessage ?? '');
  }
  if (!proofMatches(devicePairingProof(key, transcript), result.paired?.deviceProof)) {
    throw new Error('the device did not prove it knows the pairing secret');
  }
  return {
    deviceKey,
    keys: doorbell.v1.KeyList.fromObject(result.paired?.keys ?? {}),
    keyEpoch: Number(result.keyEpoch ?? 0),
  };
}
