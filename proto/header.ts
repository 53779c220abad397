import { isCorrelationId } from './correlation.js';
import type { doorbell } from './gen/doorbell.js';
import { isDeviceId } from './topics.js';

/**
 * The header of every Command and Event, as plain numbers and strings. The
 * same rules apply when sealing (so a sender never emits what receivers
 * reject) and when opening.
 */
export interface HeaderInit {
  /** The device the message is about or addressed to; see validateDeviceId. */
  deviceId: string;
  /** The full MQTT topic the message is meant for. */
  topic: string;
  /** Per signing key, strictly increasing, 1 to MAX_COUNTER (see CounterStore). */
  counter: number;
  /** Unix milliseconds, >= 1. */
  issuedAtMs: number;
  /** Unix milliseconds, > issuedAtMs. */
  expiresAtMs: number;
  /** Commands: newCorrelationId(); results: the command's. At most 64 of [0-9A-Za-z_.:-]. */
  correlationId: string;
  /** The device's key epoch as the signer knows it (commands) or its current one (events); default 0. */
  keyEpoch?: number;
}

/** A header that passed checkHeader. */
export type HeaderFields = Readonly<Required<HeaderInit>>;

const MAX_TOPIC_LENGTH = 256;

/**
 * The largest counter a header may carry: 2^48, far beyond what any key
 * uses (a command a millisecond for 8,900 years), and far enough below
 * 2^53 - 1 that every number derived from a counter (a reserved mark, the
 * next counter a receiver names) is still a safe integer that seals.
 */
export const MAX_COUNTER = 2 ** 48;

/**
 * Returns the header as plain fields, or a sentence saying what is wrong with
 * it. Every uint64 must be a safe integer (the generated decoder already
 * refuses larger values on the wire).
 */
export function checkHeader(
  header: doorbell.v1.Header.$Properties | null | undefined,
): { ok: true; header: HeaderFields } | { ok: false; problem: string } {
  if (header == null) return { ok: false, problem: 'header is missing' };
  const deviceId = header.deviceId ?? '';
  const topic = header.topic ?? '';
  const counter = header.counter ?? 0;
  const issuedAtMs = header.issuedAtMs ?? 0;
  const expiresAtMs = header.expiresAtMs ?? 0;
  const correlationId = header.correlationId ?? '';
  const keyEpoch = header.keyEpoch ?? 0;
  if (!isDeviceId(deviceId)) return { ok: false, problem: 'header.device_id is malformed' };
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_TOPIC_LENGTH) {
    return { ok: false, problem: `header.topic must be 1 to ${MAX_TOPIC_LENGTH} characters` };
  }
  if (!isPositiveSafeInteger(counter) || counter > MAX_COUNTER)
    return { ok: false, problem: `header.counter must be an integer from 1 to ${MAX_COUNTER}` };
  if (!isPositiveSafeInteger(issuedAtMs)) {
    return { ok: false, problem: 'header.issued_at_ms must be a safe integer >= 1' };
  }
  if (!isPositiveSafeInteger(expiresAtMs) || expiresAtMs <= issuedAtMs) {
    return { ok: false, problem: 'header.expires_at_ms must be a safe integer > issued_at_ms' };
  }
  if (!isCorrelationId(correlationId)) {
    return { ok: false, problem: 'header.correlation_id must be at most 64 characters of [0-9A-Za-z_.:-]' };
  }
  if (typeof keyEpoch !== 'number' || !Number.isSafeInteger(keyEpoch) || keyEpoch < 0) {
    return { ok: false, problem: 'header.key_epoch must be a safe integer >= 0' };
  }
  return {
    ok: true,
    header: { deviceId, topic, counter, issuedAtMs, expiresAtMs, correlationId, keyEpoch },
  };
}

function isPositiveSafeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}
