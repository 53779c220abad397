/**
 * What is needed of MQTT's framing without parsing packets: every control
 * packet starts with a fixed header, one byte of type and flags and the
 * remaining length (a variable byte integer of 1-4 bytes), followed by exactly
 * that many bytes (MQTT 5.0, 2.1.1 and 1.5.5).
 */

/** Packet types (the fixed header's high nibble) named in this code base. */
export const PacketType = {
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  SUBACK: 9,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

/** A fixed header's largest size: the type byte and a 4-byte remaining length. */
export const MAX_FIXED_HEADER_BYTES = 5;
/** The largest remaining length a 4-byte variable byte integer encodes. */
export const MAX_REMAINING_LENGTH = 268_435_455;

export interface FixedHeader {
  /** The packet type (1-15). */
  type: number;
  /** The type byte's low nibble. */
  flags: number;
  /** Bytes of the fixed header itself (2-5). */
  headerBytes: number;
  remainingLength: number;
}

/**
 * Reads the fixed header at `offset`: 'incomplete' when more bytes are needed,
 * 'malformed' when the remaining length runs past 4 bytes.
 */
export function readFixedHeader(bytes: Uint8Array, offset = 0): FixedHeader | 'incomplete' | 'malformed' {
  const first = bytes[offset];
  if (first === undefined) return 'incomplete';
  let remainingLength = 0;
  for (let i = 0; i < 4; i++) {
    const byte = bytes[offset + 1 + i];
    if (byte === undefined) return 'incomplete';
    remainingLength += (byte & 0x7f) * 128 ** i;
    if ((byte & 0x80) === 0) {
      return { type: first >> 4, flags: first & 0x0f, headerBytes: 2 + i, remainingLength };
    }
  }
  return 'malformed';
}

/** Bytes a variable byte integer takes for `value`. */
function variableByteIntegerBytes(value: number): number {
  if (value < 128) return 1;
  if (value < 16_384) return 2;
  if (value < 2_097_152) return 3;
  return 4;
}

/**
 * The size of the largest MQTT 5 PUBLISH carrying at most `payloadBytes` on a
 * topic of at most `topicBytes` (UTF-8), without properties: the fixed header,
 * the topic with its 2-byte length, the 2-byte packet id (QoS 1 and 2), the
 * properties' length (one byte: zero), then the payload. It is what a client
 * announces as its Maximum Packet Size so that a compliant broker never sends
 * it anything larger.
 */
export function maxPublishPacketBytes(topicBytes: number, payloadBytes: number): number {
  const remainingLength = 2 + topicBytes + 2 + variableByteIntegerBytes(0) + payloadBytes;
  return 1 + variableByteIntegerBytes(remainingLength) + remainingLength;
}

/**
 * Watches a byte stream of MQTT packets, as it arrives, for a fixed header that
 * announces a packet larger than `maxBytes`, so that the stream can be closed
 * before the packet's body is read (mqtt.js reads a packet whole before it
 * compares its size with the Maximum Packet Size it announced). Keeps at most
 * a fixed header's bytes; skips bodies without copying them.
 */
export class PacketSizeGuard {
  private readonly header = new Uint8Array(MAX_FIXED_HEADER_BYTES);
  private headerFill = 0;
  private bodyLeft = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * Feeds the next chunk. Returns the announced size of the first packet above
   * the limit (or Infinity for a malformed length), and undefined while every
   * packet so far is within it. After a refusal the stream must be closed.
   */
  feed(chunk: Uint8Array): number | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const skip = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= skip;
        i += skip;
        continue;
      }
      this.header[this.headerFill++] = chunk[i++] as number;
      const header = readFixedHeader(this.header.subarray(0, this.headerFill));
      if (header === 'incomplete') continue;
      if (header === 'malformed') return Number.POSITIVE_INFINITY;
      const size = header.headerBytes + header.remainingLength;
      if (size > this.maxBytes) return size;
      this.headerFill = 0;
      this.bodyLeft = header.remainingLength;
    }
    return undefined;
  }
}
