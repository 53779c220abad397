import { sign } from 'node:crypto';
import { doorbell } from './gen/doorbell.js';
import { checkHeader } from './header.js';
import type { SigningKey } from './keys.js';
import { parseDeviceTopic } from './topics.js';

export type { HeaderFields, HeaderInit } from './header.js';

/**
 * Sealing: encode the body, sign exactly those bytes with Ed25519, wrap body,
 * signature and key id in an Envelope. The receiver's side is verify.ts.
 */

/** The largest envelope a receiver decodes; checked before decoding anything. */
export const MAX_ENVELOPE_BYTES = 16 * 1024;

/**
 * The largest envelope on a device's `data` topic, the one topic with a larger
 * limit: footage chunks (ItemChunk) travel there.
 */
export const MAX_DATA_ENVELOPE_BYTES = 256 * 1024;

/** The envelope limit of a topic: MAX_DATA_ENVELOPE_BYTES on a device's `data` topic, else MAX_ENVELOPE_BYTES. */
export function maxEnvelopeBytes(topic: string): number {
  return parseDeviceTopic(topic)?.channel === 'data' ? MAX_DATA_ENVELOPE_BYTES : MAX_ENVELOPE_BYTES;
}

/** A message that cannot be sealed; the message names the field. */
export class SealError extends TypeError {
  override readonly name = 'SealError';
}

/** Encodes, signs and wraps a Command. Throws SealError for a malformed command. */
export function sealCommand(command: doorbell.v1.ICommand, key: SigningKey): Uint8Array {
  return seal('Command', doorbell.v1.Command, command, key, MAX_ENVELOPE_BYTES);
}

/**
 * Encodes, signs and wraps an Event. Throws SealError for a malformed event or
 * one above `maxBytes` (the topic's limit, maxEnvelopeBytes).
 */
export function sealEvent(
  event: doorbell.v1.IEvent,
  key: SigningKey,
  maxBytes: number = MAX_ENVELOPE_BYTES,
): Uint8Array {
  return seal('Event', doorbell.v1.Event, event, key, maxBytes);
}

/** What seal needs of a generated message class. */
interface BodyCodec<P> {
  verify(message: { [k: string]: unknown }): string | null;
  encode(message: P): { finish(): Uint8Array };
  decode(bytes: Uint8Array): { kind?: string };
}

function seal<P extends { header?: doorbell.v1.Header.$Properties | null }>(
  what: string,
  codec: BodyCodec<P>,
  message: P,
  key: SigningKey,
  maxBytes: number,
): Uint8Array {
  const header = checkHeader(message.header);
  if (!header.ok) throw new SealError(`cannot seal ${what}: ${header.problem}`);
  const problem = codec.verify(message as { [k: string]: unknown });
  if (problem !== null) throw new SealError(`cannot seal ${what}: ${problem}`);
  const body = codec.encode(message).finish();
  // Decoding our own bytes back is the cheap, complete check that every field
  // survives the wire: the generated decoder refuses uint64 values above 2^53-1
  // (and negative numbers, which encode as huge ones).
  let kind: string | undefined;
  try {
    kind = codec.decode(body).kind;
  } catch (err) {
    throw new SealError(`cannot seal ${what}: ${(err as Error).message}`);
  }
  if (kind === undefined) throw new SealError(`cannot seal ${what}: no kind is set`);
  const signature = sign(null, body, key.privateKey);
  const envelope = doorbell.v1.Envelope.encode({ body, signature, keyId: key.keyId }).finish();
  if (envelope.length > maxBytes) {
    throw new SealError(`cannot seal ${what}: envelope is ${envelope.length} bytes, above ${maxBytes}`);
  }
  return envelope;
}
