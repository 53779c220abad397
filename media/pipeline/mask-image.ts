import { crc32, deflateSync } from 'node:zlib';

/** The mask image's file name in the ring directory (RAM, 0700). */
export const MASK_IMAGE_FILE = 'mask.png';

const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function pngChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * One opaque black pixel as a PNG (8-bit greyscale, no alpha): what each
 * privacy mask's `gdkpixbufoverlay` scales over its rectangle. Built here,
 * not shipped as a file, so the bundle carries no binary asset.
 */
export function blackPixelPng(): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(1, 0); // width
  header.writeUInt32BE(1, 4); // height
  header[8] = 8; // bit depth
  header[9] = 0; // colour type: greyscale
  // compression, filter and interlace methods: 0
  const scanline = Uint8Array.of(0, 0); // filter type 0, one black pixel
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(scanline)),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}
