import { RigProtocolError } from './errors.js';

/**
 * Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999): removes every
 * 0x00 from a frame so that 0x00 can delimit frames on the wire. Each block
 * starts with a code byte c (1..255): c - 1 data bytes follow, then an implied
 * 0x00 unless c is 255 or the block ends the frame.
 */

/** The largest encoding of `n` bytes: one code byte per started block of 254, plus one. */
export function maxEncodedLength(n: number): number {
  return n + Math.floor(n / 254) + 1;
}

/** Encodes `data`; the result never contains 0x00 and has no delimiter appended. */
export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(maxEncodedLength(data.length));
  let codeIndex = 0;
  let code = 1;
  let o = 1;
  for (const b of data) {
    if (b === 0) {
      out[codeIndex] = code;
      codeIndex = o++;
      code = 1;
      continue;
    }
    out[o++] = b;
    code++;
    if (code === 0xff) {
      out[codeIndex] = code;
      codeIndex = o++;
      code = 1;
    }
  }
  out[codeIndex] = code;
  return out.subarray(0, o);
}

/**
 * Decodes one COBS block sequence (without its delimiter). Throws
 * RigProtocolError('bad-cobs') when the input contains 0x00 or a code byte
 * points past the end.
 */
export function cobsDecode(encoded: Uint8Array): Uint8Array {
  const out = new Uint8Array(encoded.length);
  let o = 0;
  let i = 0;
  while (i < encoded.length) {
    const code = encoded[i] ?? 0;
    if (code === 0) throw new RigProtocolError('bad-cobs', `COBS: 0x00 inside a frame at offset ${i}`);
    const end = i + code;
    if (end > encoded.length) {
      throw new RigProtocolError(
        'bad-cobs',
        `COBS: code byte ${code} at offset ${i} runs past the end (${encoded.length} bytes)`,
      );
    }
    i++;
    for (; i < end; i++) {
      const b = encoded[i] ?? 0;
      if (b === 0) throw new RigProtocolError('bad-cobs', `COBS: 0x00 inside a frame at offset ${i}`);
      out[o++] = b;
    }
    if (code < 0xff && i < encoded.length) out[o++] = 0;
  }
  return out.subarray(0, o);
}
