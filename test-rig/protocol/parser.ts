import { cobsDecode, maxEncodedLength } from './cobs.js';
import { CODEC_ERROR_KINDS, type CodecErrorKind, isCodecErrorKind, RigProtocolError } from './errors.js';
import { decodeFrame, type Frame } from './frame.js';
import { MAX_FRAME_BYTES } from './message-types.js';
import { DELIMITER } from './writer.js';

/** The longest COBS encoding of a frame at the cap: 512 + 2 + 1 = 515 bytes. */
export const MAX_ENCODED_FRAME_BYTES = maxEncodedLength(MAX_FRAME_BYTES);

export interface ParseResult {
  frames: Frame[];
  /** One entry per rejected frame, in stream order; also counted in `errorCounts`. */
  errors: RigProtocolError[];
}

/**
 * Splits a byte stream into frames at 0x00 delimiters and decodes them. Feed
 * it arbitrary chunks; a frame split across chunks is kept until its
 * delimiter arrives. It never throws on input:
 * - garbage is rejected as one bad frame and the parser resynchronises at the
 *   next 0x00, so every frame whose bytes start after a delimiter is recovered;
 * - a frame whose encoding grows beyond 515 bytes is dropped: the parser
 *   discards bytes up to the next delimiter and counts one `oversize`;
 * - empty frames (two delimiters in a row) are ignored and not counted.
 */
export class FrameParser {
  private readonly buffer = new Uint8Array(MAX_ENCODED_FRAME_BYTES);
  private length = 0;
  private dropping = false;
  private readonly counts = new Map<CodecErrorKind, number>(CODEC_ERROR_KINDS.map((k) => [k, 0]));
  private frameCount = 0;

  push(chunk: Uint8Array): ParseResult {
    const result: ParseResult = { frames: [], errors: [] };
    for (const byte of chunk) {
      if (byte === DELIMITER) {
        this.endFrame(result);
      } else if (this.dropping) {
        // Discarding the rest of an oversize frame.
      } else if (this.length === this.buffer.length) {
        this.dropping = true;
        this.length = 0;
        this.fail(
          result,
          new RigProtocolError(
            'oversize',
            `frame longer than ${MAX_ENCODED_FRAME_BYTES} encoded bytes dropped`,
          ),
        );
      } else {
        this.buffer[this.length++] = byte;
      }
    }
    return result;
  }

  /** Rejected frames so far, by kind (every kind present, zero when none). */
  get errorCounts(): Readonly<Record<CodecErrorKind, number>> {
    return Object.fromEntries(this.counts) as Record<CodecErrorKind, number>;
  }

  /** Frames accepted so far. */
  get frames(): number {
    return this.frameCount;
  }

  /** Bytes buffered towards a frame not yet delimited. */
  get pending(): number {
    return this.length;
  }

  /** Forgets a partial frame, e.g. after the transport reconnects. */
  reset(): void {
    this.length = 0;
    this.dropping = false;
  }

  private endFrame(result: ParseResult): void {
    if (this.dropping) {
      this.dropping = false;
      return;
    }
    if (this.length === 0) return;
    const encoded = this.buffer.subarray(0, this.length);
    this.length = 0;
    try {
      result.frames.push(decodeFrame(cobsDecode(encoded)));
      this.frameCount++;
    } catch (err) {
      this.fail(
        result,
        err instanceof RigProtocolError
          ? err
          : new RigProtocolError('bad-value', `undecodable frame: ${String(err)}`, { cause: err }),
      );
    }
  }

  private fail(result: ParseResult, err: RigProtocolError): void {
    const kind: CodecErrorKind = isCodecErrorKind(err.kind) ? err.kind : 'bad-value';
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    result.errors.push(err);
  }
}
