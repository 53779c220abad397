import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { sealCommand } from './envelope.js';
import type { doorbell } from './gen/doorbell.js';
import type { HeaderFields } from './header.js';
import type { SigningKey } from './keys.js';
import { isDeviceId } from './topics.js';

/**
 * Pairing by physical possession. Each device creates a 32-byte random
 * pairing secret on first run and shows it only locally (`doorbell identity`,
 * as text and QR code, meant to be printed on the board). The pairing code
 * carries the device id, the SHA-256 fingerprint of the device's public key
 * and the secret. Whoever holds the code derives
 *
 *   pairing key = HKDF-SHA256(secret, salt = fingerprint, info = PAIRING_INFO)
 *
 * and sends a Pair command whose `proof` is HMAC-SHA256(pairing key,
 * transcript): every field of the command that matters, length-prefixed, plus
 * the device's fingerprint. The device answers with
 * HMAC-SHA256(pairing key, "device" || transcript) and its public key, which
 * the hub checks against the fingerprint from the code and pins. The secret
 * itself never travels; an eavesdropper sees two MACs over public data.
 */

export const PAIRING_CODE_PREFIX = 'odb1';
export const PAIRING_SECRET_BYTES = 32;
export const MAX_PAIRING_CODE_CHARS = 256;
export const MIN_PAIRING_NONCE_BYTES = 16;
export const MAX_PAIRING_NONCE_BYTES = 32;
export const PAIRING_PROOF_BYTES = 32;
const PAIRING_INFO = 'open-doorbell pairing v1';
const TRANSCRIPT_DOMAIN = 'open-doorbell/pair/v1';

/** What a pairing code says. */
export interface PairingCode {
  deviceId: string;
  /** Lowercase hex SHA-256 of the device's raw Ed25519 public key (64 characters). */
  fingerprint: string;
  /** The 32-byte pairing secret. */
  secret: Buffer;
}

/** A malformed pairing code; the message says what is wrong, never the secret. */
export class PairingCodeError extends TypeError {
  override readonly name = 'PairingCodeError';
}

/** The full SHA-256 fingerprint of a raw public key, lowercase hex. */
export function fingerprintOf(publicRaw: Uint8Array): string {
  return createHash('sha256').update(publicRaw).digest('hex');
}

export function newPairingSecret(): Buffer {
  return randomBytes(PAIRING_SECRET_BYTES);
}

/** `odb1:<device id>:<fingerprint>:<secret, base64url>`. */
export function formatPairingCode(code: PairingCode): string {
  return [PAIRING_CODE_PREFIX, code.deviceId, code.fingerprint, code.secret.toString('base64url')].join(':');
}

/** Parses a pairing code strictly (surrounding white space is ignored). */
export function parsePairingCode(text: string): PairingCode {
  if (typeof text !== 'string') throw new PairingCodeError('a pairing code must be text');
  if (text.length > MAX_PAIRING_CODE_CHARS) {
    throw new PairingCodeError(`a pairing code is at most ${MAX_PAIRING_CODE_CHARS} characters`);
  }
  const parts = text.trim().split(':');
  if (parts.length !== 4 || parts[0] !== PAIRING_CODE_PREFIX) {
    throw new PairingCodeError(
      `a pairing code looks like ${PAIRING_CODE_PREFIX}:<device id>:<fingerprint>:<secret>`,
    );
  }
  const [, deviceId = '', fingerprint = '', secretText = ''] = parts;
  if (!isDeviceId(deviceId)) throw new PairingCodeError('the pairing code names a malformed device id');
  if (!/^[0-9a-f]{64}$/.test(fingerprint)) {
    throw new PairingCodeError('the fingerprint in the pairing code must be 64 lowercase hex digits');
  }
  const secret = Buffer.from(secretText, 'base64url');
  if (secret.length !== PAIRING_SECRET_BYTES || secret.toString('base64url') !== secretText) {
    throw new PairingCodeError(
      `the secret in the pairing code must be ${PAIRING_SECRET_BYTES} bytes in base64url`,
    );
  }
  return { deviceId, fingerprint, secret };
}

/** The MAC key both sides derive from the secret and the device's fingerprint. */
export function pairingKey(secret: Uint8Array, fingerprint: string): Buffer {
  if (secret.length !== PAIRING_SECRET_BYTES) throw new TypeError('pairing secret must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', secret, Buffer.from(fingerprint, 'hex'), PAIRING_INFO, 32));
}

/**
 * The pairing transcript: the header (device, topic, counter, times,
 * correlation id), the device's fingerprint and every field of the Pair
 * command except the proof, each length-prefixed so no two different
 * transcripts share bytes.
 */
export function pairingTranscript(
  header: HeaderFields,
  fingerprint: string,
  pair: doorbell.v1.IPair,
): Buffer {
  const parts: Buffer[] = [];
  const field = (value: Uint8Array | string): void => {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  const integer = (value: number): void => {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64BE(BigInt(value));
    field(bytes);
  };
  field(TRANSCRIPT_DOMAIN);
  field(header.deviceId);
  field(header.topic);
  integer(header.counter);
  integer(header.issuedAtMs);
  integer(header.expiresAtMs);
  field(header.correlationId);
  integer(header.keyEpoch);
  field(Buffer.from(fingerprint, 'hex'));
  field(pair.ownerPublicKey ?? new Uint8Array());
  field(pair.ownerLabel ?? '');
  field(pair.hubPublicKey ?? new Uint8Array());
  integer(pair.hubRole ?? 0);
  field(pair.hubLabel ?? '');
  const recipients = pair.footageRecipients ?? [];
  integer(recipients.length);
  for (const r of recipients) field(r);
  field(pair.nonce ?? new Uint8Array());
  return Buffer.concat(parts);
}

/** The hub's proof: HMAC-SHA256(key, transcript). */
export function pairingProof(key: Uint8Array, transcript: Uint8Array): Buffer {
  return createHmac('sha256', key).update(transcript).digest();
}

/** The device's answer: HMAC-SHA256(key, "device" || transcript). */
export function devicePairingProof(key: Uint8Array, transcript: Uint8Array): Buffer {
  return createHmac('sha256', key).update('device').update(transcript).digest();
}

/** Compares a received proof with the expected one in constant time. */
export function proofMatches(expected: Uint8Array, received: Uint8Array | null | undefined): boolean {
  if (received == null || received.length !== expected.length) return false;
  return timingSafeEqual(expected, received);
}

/**
 * A Pair command as the pairer sends it: `pair` (without its proof) gets a
 * fresh nonce if it has none and the proof over the transcript of `header`,
 * and is sealed with `owner`, the key it enrols. Returns the envelope, and
 * the pairing key and transcript the device's answer is checked with.
 */
export function sealPairCommand(input: {
  header: HeaderFields;
  pair: Omit<doorbell.v1.IPair, 'proof'>;
  owner: SigningKey;
  secret: Uint8Array;
  fingerprint: string;
}): { payload: Uint8Array; key: Buffer; transcript: Buffer } {
  const pair: doorbell.v1.IPair = {
    ...input.pair,
    ownerPublicKey: input.owner.publicRaw,
    nonce: input.pair.nonce ?? randomBytes(16),
  };
  const key = pairingKey(input.secret, input.fingerprint);
  const transcript = pairingTranscript(input.header, input.fingerprint, pair);
  const payload = sealCommand(
    { header: input.header, pair: { ...pair, proof: pairingProof(key, transcript) } },
    input.owner,
  );
  return { payload, key, transcript };
}
