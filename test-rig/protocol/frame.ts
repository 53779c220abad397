import { crc16 } from './crc16.js';
import { RigProtocolError } from './errors.js';
import {
  CRC_BYTES,
  HEADER_BYTES,
  MAX_FRAME_BYTES,
  MESSAGE_CODES,
  type RigMessage,
  SUPPORTED_VERSIONS,
} from './message-types.js';
import { decodePayload, encodePayload, hex } from './messages.js';

/**
 * One frame before COBS: version u8, type u8, request id u16 LE, payload
 * length u16 LE, payload, CRC-16/CCITT-FALSE u16 LE over everything before it.
 */
export interface Frame {
  version: number;
  /** 1..65535 for requests and their replies, 0 for unsolicited messages. */
  id: number;
  message: RigMessage;
}

/** The decoded bytes of a frame (no COBS, no delimiter). Throws `bad-value` or `oversize`. */
export function encodeFrame(frame: Frame): Uint8Array {
  if (!Number.isInteger(frame.id) || frame.id < 0 || frame.id > 0xffff) {
    throw new RigProtocolError('bad-value', `request id must be in [0, 65535], got ${frame.id}`);
  }
  if (!Number.isInteger(frame.version) || frame.version < 1 || frame.version > 255) {
    throw new RigProtocolError('bad-value', `version must be in [1, 255], got ${frame.version}`);
  }
  const payload = encodePayload(frame.message);
  const size = HEADER_BYTES + payload.length + CRC_BYTES;
  if (size > MAX_FRAME_BYTES) {
    throw new RigProtocolError(
      'oversize',
      `${frame.message.type} frame of ${size} bytes exceeds ${MAX_FRAME_BYTES}`,
    );
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = frame.version;
  out[1] = MESSAGE_CODES[frame.message.type];
  view.setUint16(2, frame.id, true);
  view.setUint16(4, payload.length, true);
  out.set(payload, HEADER_BYTES);
  view.setUint16(size - CRC_BYTES, crc16(out, 0, size - CRC_BYTES), true);
  return out;
}

/**
 * Decodes a frame's bytes. Checks, in order: size (8..512), CRC, version,
 * length field, type and payload. Errors after the CRC matched carry the
 * frame's request id, so a receiver can answer ERROR to the right request.
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (bytes.length > MAX_FRAME_BYTES) {
    throw new RigProtocolError('oversize', `frame of ${bytes.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  }
  if (bytes.length < HEADER_BYTES + CRC_BYTES) {
    throw new RigProtocolError('bad-length', `frame of ${bytes.length} bytes is shorter than header + CRC`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length - CRC_BYTES;
  const expected = view.getUint16(end, true);
  const actual = crc16(bytes, 0, end);
  if (expected !== actual) {
    throw new RigProtocolError(
      'bad-crc',
      `CRC 0x${hex(actual, 4)} does not match the frame's 0x${hex(expected, 4)}`,
    );
  }
  const version = bytes[0] ?? 0;
  const id = view.getUint16(2, true);
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new RigProtocolError('unsupported-version', `frame version ${version} is not supported`, {
      requestId: id,
    });
  }
  const length = view.getUint16(4, true);
  if (length !== end - HEADER_BYTES) {
    throw new RigProtocolError(
      'bad-length',
      `length field says ${length} payload bytes, the frame holds ${end - HEADER_BYTES}`,
      { requestId: id },
    );
  }
  try {
    const message = decodePayload(bytes[1] ?? 0, bytes.subarray(HEADER_BYTES, end));
    return { version, id, message };
  } catch (err) {
    if (err instanceof RigProtocolError) {
      throw new RigProtocolError(err.kind, `request #${id}: ${err.message}`, { cause: err, requestId: id });
    }
    throw err;
  }
}
