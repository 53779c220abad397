/**
 * The rig protocol's messages (version 1), as a discriminated union on `type`.
 * Wire layouts are in docs/rig-protocol.md; the codes here are normative.
 */

/** Frame versions this implementation speaks, newest last. */
export const SUPPORTED_VERSIONS: readonly number[] = [1];
/** HELLO and HELLO_ACK always travel in version-1 frames, so any two sides can negotiate. */
export const HANDSHAKE_FRAME_VERSION = 1;

export const HEADER_BYTES = 6;
export const CRC_BYTES = 2;
/** The cap on a decoded frame (header + payload + CRC). */
export const MAX_FRAME_BYTES = 512;
export const MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES - HEADER_BYTES - CRC_BYTES;
/** Longest firmware version or serial number, in UTF-8 bytes. */
export const MAX_STRING_BYTES = 64;

/** Field ranges; encoders and decoders reject values outside them with `bad-value`. */
export const LIMITS = {
  pressMs: { min: 1, max: 60_000 },
  holdMs: { min: 1, max: 600_000 },
  bounceEdges: { min: 1, max: 10_000 },
  bounceSpacingUs: { min: 1, max: 1_000_000 },
  bounceSettleMs: { min: 0, max: 60_000 },
  helloVersions: { min: 1, max: 16 },
} as const;

export const MESSAGE_CODES = {
  HELLO: 0x01,
  HELLO_ACK: 0x02,
  PING: 0x03,
  PONG: 0x04,
  INFO: 0x05,
  INFO_REPLY: 0x06,
  PRESS: 0x10,
  HOLD: 0x11,
  BOUNCE: 0x12,
  CHIME_WATCH: 0x13,
  POWER: 0x14,
  LAMP: 0x15,
  CONSOLE: 0x16,
  ACK: 0x20,
  ERROR: 0x21,
  CHIME_EDGE: 0x30,
  CONSOLE_DATA: 0x31,
} as const;

export type MessageType = keyof typeof MESSAGE_CODES;

export const MESSAGE_TYPES = Object.keys(MESSAGE_CODES) as MessageType[];

const TYPE_BY_CODE = new Map<number, MessageType>(MESSAGE_TYPES.map((t) => [MESSAGE_CODES[t], t]));

export function messageTypeOf(code: number): MessageType | undefined {
  return TYPE_BY_CODE.get(code);
}

/** Codes the rig sends in ERROR; 255 is a catch-all and unknown codes decode as `other`. */
export const RIG_ERROR_CODES = {
  'bad-crc': 1,
  'unknown-type': 2,
  'bad-length': 3,
  'bad-value': 4,
  busy: 5,
  'unsupported-version': 6,
  'hardware-fault': 7,
  'not-ready': 8,
  unsupported: 9,
  overflow: 10,
  other: 255,
} as const;

export type RigErrorCode = keyof typeof RIG_ERROR_CODES;

export const RIG_ERROR_CODE_NAMES = Object.keys(RIG_ERROR_CODES) as RigErrorCode[];

const ERROR_BY_CODE = new Map<number, RigErrorCode>(RIG_ERROR_CODE_NAMES.map((n) => [RIG_ERROR_CODES[n], n]));

export function rigErrorCodeOf(code: number): RigErrorCode {
  return ERROR_BY_CODE.get(code) ?? 'other';
}

/** Bits of HELLO_ACK's capabilities bitmap. */
export const CAPABILITIES = {
  button: 1 << 0,
  bounce: 1 << 1,
  chime: 1 << 2,
  power: 1 << 3,
  lamp: 1 << 4,
  console: 1 << 5,
} as const;

export type RigCapability = keyof typeof CAPABILITIES;

export type RigMessage =
  | { type: 'HELLO'; versions: number[] }
  | { type: 'HELLO_ACK'; version: number; capabilities: number; firmware: string; serial: string }
  | { type: 'PING'; payload: Uint8Array }
  | { type: 'PONG'; payload: Uint8Array }
  | { type: 'INFO' }
  | {
      type: 'INFO_REPLY';
      uptimeUs: bigint;
      power: boolean;
      lamp: boolean;
      chimeLevel: 0 | 1;
      chimeWatch: boolean;
      console: boolean;
      busy: boolean;
    }
  | { type: 'PRESS'; durationMs: number }
  | { type: 'HOLD'; durationMs: number }
  | { type: 'BOUNCE'; edges: number; spacingUs: number; settleMs: number }
  | { type: 'CHIME_WATCH'; on: boolean }
  | { type: 'POWER'; on: boolean }
  | { type: 'LAMP'; on: boolean }
  | { type: 'CONSOLE'; on: boolean }
  | { type: 'ACK' }
  | { type: 'ERROR'; code: RigErrorCode; detail: string }
  | { type: 'CHIME_EDGE'; level: 0 | 1; tUs: bigint }
  | { type: 'CONSOLE_DATA'; data: Uint8Array };

export type MessageOf<T extends MessageType> = Extract<RigMessage, { type: T }>;

/** Messages the rig sends on its own, always with request id 0. */
export const UNSOLICITED: ReadonlySet<MessageType> = new Set(['CHIME_EDGE', 'CONSOLE_DATA']);
