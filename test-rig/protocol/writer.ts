import { cobsEncode } from './cobs.js';
import { encodeFrame, type Frame } from './frame.js';

export const DELIMITER = 0x00;

/**
 * The bytes to write for one frame: its COBS encoding followed by the 0x00
 * delimiter. Throws RigProtocolError `bad-value` or `oversize` for a message
 * that cannot be sent, before anything reaches the wire.
 */
export function writeFrame(frame: Frame): Uint8Array {
  const encoded = cobsEncode(encodeFrame(frame));
  const out = new Uint8Array(encoded.length + 1);
  out.set(encoded, 0);
  out[encoded.length] = DELIMITER;
  return out;
}

/**
 * A lone delimiter: sent before the first frame of a session, it ends any
 * partial frame the other side buffered from earlier noise, so the first
 * real frame is not lost. Empty frames are ignored by every receiver.
 */
export function flushBytes(): Uint8Array {
  return Uint8Array.of(DELIMITER);
}
