/**
 * The on-disk record format of the durable outbox (`outbox.log`):
 *
 *   file   = MAGIC record*
 *   record = u32 BE body length, u32 BE CRC-32 of the body, body
 *   body   = ENTRY  u8 1, u64 seq, u8 retain, u16 topic length, topic (UTF-8), payload
 *          | REMOVE u8 2, u64 seq            the head entry `seq` left the queue
 *          | DROPS  u8 3, u32 count, u64 oldest dropped counter
 *                                           the drops not yet reported (the last one counts)
 *
 * Everything read back is checked: lengths are capped, the CRC must match,
 * sequence numbers must increase and a REMOVE must name the current head.
 */

export const MAGIC = Buffer.from('ODBOXv1\n', 'latin1');
export const RECORD_HEADER_BYTES = 8;
export const MAX_TOPIC_BYTES = 256;
/** A signed envelope is at most 16 KiB (MAX_ENVELOPE_BYTES); this leaves room. */
export const MAX_PAYLOAD_BYTES = 32 * 1024;
export const MAX_BODY_BYTES = 1 + 8 + 1 + 2 + MAX_TOPIC_BYTES + MAX_PAYLOAD_BYTES;

export enum RecordType {
  Entry = 1,
  Remove = 2,
  Drops = 3,
}

export type OutboxRecord =
  | { type: RecordType.Entry; seq: number; topic: string; payload: Uint8Array; retain: boolean }
  | { type: RecordType.Remove; seq: number }
  | { type: RecordType.Drops; count: number; oldestCounter: number };

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE), as zlib computes it. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = (CRC_TABLE[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  out.writeUInt32BE(crc32(body), 4);
  body.copy(out, RECORD_HEADER_BYTES);
  return out;
}

function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeBigUInt64BE(BigInt(value), offset);
}

export function encodeRecord(record: OutboxRecord): Buffer {
  switch (record.type) {
    case RecordType.Entry: {
      const topic = Buffer.from(record.topic, 'utf8');
      const body = Buffer.allocUnsafe(12 + topic.length + record.payload.length);
      body.writeUInt8(RecordType.Entry, 0);
      writeU64(body, record.seq, 1);
      body.writeUInt8(record.retain ? 1 : 0, 9);
      body.writeUInt16BE(topic.length, 10);
      topic.copy(body, 12);
      body.set(record.payload, 12 + topic.length);
      return frame(body);
    }
    case RecordType.Remove: {
      const body = Buffer.allocUnsafe(9);
      body.writeUInt8(RecordType.Remove, 0);
      writeU64(body, record.seq, 1);
      return frame(body);
    }
    case RecordType.Drops: {
      const body = Buffer.allocUnsafe(13);
      body.writeUInt8(RecordType.Drops, 0);
      body.writeUInt32BE(record.count, 1);
      writeU64(body, record.oldestCounter, 5);
      return frame(body);
    }
  }
}

/** How one record at `offset` reads: a record, a torn tail (ends the file), or corruption. */
export type ReadResult =
  | { kind: 'record'; record: OutboxRecord; next: number }
  | { kind: 'torn'; reason: string }
  | { kind: 'corrupt'; reason: string };

function readU64(buf: Buffer, offset: number): number | undefined {
  const value = buf.readBigUInt64BE(offset);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

/**
 * Reads the record at `offset` of `file`. A record that runs past the end of
 * the file, or whose CRC fails while it is the last one, is a torn tail: an
 * append cut short by a crash.
 */
export function readRecord(file: Buffer, offset: number): ReadResult {
  const left = file.length - offset;
  if (left < RECORD_HEADER_BYTES) return { kind: 'torn', reason: `${left} bytes of a record header` };
  const length = file.readUInt32BE(offset);
  const end = offset + RECORD_HEADER_BYTES + length;
  if (end > file.length) return { kind: 'torn', reason: `record of ${length} bytes runs past the end` };
  if (length < 1 || length > MAX_BODY_BYTES) {
    return { kind: 'corrupt', reason: `record length ${length} out of range` };
  }
  const body = file.subarray(offset + RECORD_HEADER_BYTES, end);
  if (crc32(body) !== file.readUInt32BE(offset + 4)) {
    return end === file.length
      ? { kind: 'torn', reason: 'CRC mismatch in the last record' }
      : { kind: 'corrupt', reason: `CRC mismatch at offset ${offset}` };
  }
  const record = decodeBody(body);
  return typeof record === 'string'
    ? { kind: 'corrupt', reason: record }
    : { kind: 'record', record, next: end };
}

function decodeBody(body: Buffer): OutboxRecord | string {
  const type = body.readUInt8(0);
  switch (type) {
    case RecordType.Entry: {
      if (body.length < 12) return 'short entry record';
      const seq = readU64(body, 1);
      const retain = body.readUInt8(9);
      const topicLength = body.readUInt16BE(10);
      if (seq === undefined || seq < 1) return 'entry sequence out of range';
      if (retain > 1) return 'entry retain flag out of range';
      if (topicLength < 1 || topicLength > MAX_TOPIC_BYTES || 12 + topicLength > body.length) {
        return 'entry topic length out of range';
      }
      const payload = body.subarray(12 + topicLength);
      if (payload.length > MAX_PAYLOAD_BYTES) return 'entry payload too large';
      return {
        type: RecordType.Entry,
        seq,
        retain: retain === 1,
        topic: body.subarray(12, 12 + topicLength).toString('utf8'),
        payload: new Uint8Array(payload),
      };
    }
    case RecordType.Remove: {
      const seq = body.length === 9 ? readU64(body, 1) : undefined;
      return seq === undefined ? 'bad remove record' : { type: RecordType.Remove, seq };
    }
    case RecordType.Drops: {
      if (body.length !== 13) return 'bad drops record';
      const oldestCounter = readU64(body, 5);
      if (oldestCounter === undefined) return 'drops counter out of range';
      return { type: RecordType.Drops, count: body.readUInt32BE(1), oldestCounter };
    }
    default:
      return `unknown record type ${type}`;
  }
}
