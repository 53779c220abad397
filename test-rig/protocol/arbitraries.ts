import fc from 'fast-check';
import type { Frame } from './frame.js';
import {
  MAX_PAYLOAD_BYTES,
  MAX_STRING_BYTES,
  MESSAGE_TYPES,
  type MessageType,
  RIG_ERROR_CODE_NAMES,
  type RigMessage,
} from './message-types.js';

/** fast-check generators of every message type with random, valid fields (for property tests). */

const utf8Length = (s: string) => new TextEncoder().encode(s).length;
const text = (maxBytes: number) =>
  fc.string({ unit: 'grapheme', maxLength: Math.min(maxBytes, 80) }).filter((s) => utf8Length(s) <= maxBytes);
const flag = fc.boolean();
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const int = (min: number, max: number) => fc.integer({ min, max });

const BY_TYPE: { [T in MessageType]: fc.Arbitrary<Omit<Extract<RigMessage, { type: T }>, 'type'>> } = {
  HELLO: fc.record({ versions: fc.array(int(1, 255), { minLength: 1, maxLength: 16 }) }),
  HELLO_ACK: fc.record({
    version: int(1, 255),
    capabilities: int(0, 0xffff_ffff),
    firmware: text(MAX_STRING_BYTES),
    serial: text(MAX_STRING_BYTES),
  }),
  PING: fc.record({ payload: bytes(MAX_PAYLOAD_BYTES) }),
  PONG: fc.record({ payload: bytes(MAX_PAYLOAD_BYTES) }),
  INFO: fc.record({}),
  INFO_REPLY: fc.record({
    uptimeUs: u64,
    power: flag,
    lamp: flag,
    chimeLevel: fc.constantFrom(0 as const, 1 as const),
    chimeWatch: flag,
    console: flag,
    busy: flag,
  }),
  PRESS: fc.record({ durationMs: int(1, 60_000) }),
  HOLD: fc.record({ durationMs: int(1, 600_000) }),
  BOUNCE: fc.record({ edges: int(1, 10_000), spacingUs: int(1, 1_000_000), settleMs: int(0, 60_000) }),
  CHIME_WATCH: fc.record({ on: flag }),
  POWER: fc.record({ on: flag }),
  LAMP: fc.record({ on: flag }),
  CONSOLE: fc.record({ on: flag }),
  ACK: fc.record({}),
  ERROR: fc.record({ code: fc.constantFrom(...RIG_ERROR_CODE_NAMES), detail: text(MAX_PAYLOAD_BYTES - 1) }),
  CHIME_EDGE: fc.record({ level: fc.constantFrom(0 as const, 1 as const), tUs: u64 }),
  CONSOLE_DATA: fc.record({ data: bytes(MAX_PAYLOAD_BYTES) }),
};

/** A message of the given type with random fields. */
export function messageOf(type: MessageType): fc.Arbitrary<RigMessage> {
  return BY_TYPE[type].map((fields) => ({ type, ...fields }) as RigMessage);
}

/** Any message, every type equally likely. */
export const anyMessage: fc.Arbitrary<RigMessage> = fc.oneof(...MESSAGE_TYPES.map(messageOf));

/** Any frame of a supported version with a random request id. */
export const anyFrame: fc.Arbitrary<Frame> = fc
  .record({
    version: fc.constant(1),
    id: int(0, 0xffff),
    message: anyMessage,
  })
  .map((frame) => ({ ...frame }));
