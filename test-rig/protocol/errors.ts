/**
 * The closed set of ways talking to the rig can fail. Generic code (the CLI,
 * the suites) matches on `kind`, never on message text.
 *
 * Codec (the parser counts these; the decoders throw them):
 * - `bad-cobs`: the bytes between two delimiters are not a valid COBS encoding.
 * - `oversize`: a frame longer than the protocol cap (512 bytes decoded).
 * - `bad-length`: the frame is shorter than a header plus CRC, its length field
 *   disagrees with its size, or a payload has the wrong size for its type.
 * - `bad-crc`: the CRC-16 does not match.
 * - `unsupported-version`: a frame version this side does not speak.
 * - `unknown-type`: a message type this side does not know.
 * - `bad-value`: a field out of its documented range (a boolean other than 0/1,
 *   a duration of 0, invalid UTF-8).
 *
 * Driver:
 * - `timeout`: no reply within the deadline; the message names the request.
 * - `disconnected`: the transport closed or failed while the request was pending,
 *   or a request was made while disconnected.
 * - `closed`: the driver was used after `close()`.
 * - `rejected`: the rig answered ERROR; `rigCode` and `detail` say why.
 * - `unsupported`: the rig's capabilities lack what the call needs.
 * - `handshake`: the rig's answer to HELLO was missing or unacceptable.
 *
 * Transport (opening a serial port):
 * - `unavailable` (no such port), `permission`, `busy` (locked by another
 *   process), `io` (any other operating-system failure).
 */
export type RigErrorKind =
  | 'bad-cobs'
  | 'oversize'
  | 'bad-length'
  | 'bad-crc'
  | 'unsupported-version'
  | 'unknown-type'
  | 'bad-value'
  | 'timeout'
  | 'disconnected'
  | 'closed'
  | 'rejected'
  | 'unsupported'
  | 'handshake'
  | 'unavailable'
  | 'permission'
  | 'busy'
  | 'io';

/** The kinds a frame decoder can produce: what the parser counts. */
export type CodecErrorKind =
  | 'bad-cobs'
  | 'oversize'
  | 'bad-length'
  | 'bad-crc'
  | 'unsupported-version'
  | 'unknown-type'
  | 'bad-value';

export const CODEC_ERROR_KINDS: readonly CodecErrorKind[] = [
  'bad-cobs',
  'oversize',
  'bad-length',
  'bad-crc',
  'unsupported-version',
  'unknown-type',
  'bad-value',
];

/** The only error type the rig protocol code throws; anything else is wrapped with `cause`. */
export class RigProtocolError extends Error {
  override readonly name = 'RigProtocolError';
  readonly kind: RigErrorKind;
  /** For `rejected`: the rig's error code name; otherwise undefined. */
  readonly rigCode: string | undefined;
  /**
   * The request id of the frame concerned, when known: for a decoding error
   * after the CRC matched (so the header is trustworthy), or for a reply.
   */
  readonly requestId: number | undefined;

  constructor(
    kind: RigErrorKind,
    message: string,
    options?: { cause?: unknown; rigCode?: string; requestId?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.rigCode = options?.rigCode;
    this.requestId = options?.requestId;
  }
}

/** True when `err` is a RigProtocolError, optionally of the given kind. */
export function isRigError(err: unknown, kind?: RigErrorKind): err is RigProtocolError {
  return err instanceof RigProtocolError && (kind === undefined || err.kind === kind);
}

export function isCodecErrorKind(kind: RigErrorKind): kind is CodecErrorKind {
  return (CODEC_ERROR_KINDS as readonly string[]).includes(kind);
}

/** `err` as a `disconnected` error saying what was going on. */
export function asDisconnected(err: unknown, what: string): RigProtocolError {
  if (isRigError(err, 'disconnected')) return err;
  const detail = err instanceof Error ? `: ${err.message}` : '';
  return new RigProtocolError('disconnected', `${what}${detail}`, { cause: err });
}
