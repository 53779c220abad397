import { RigProtocolError } from './errors.js';
import {
  LIMITS,
  MAX_PAYLOAD_BYTES,
  MAX_STRING_BYTES,
  MESSAGE_CODES,
  type MessageType,
  messageTypeOf,
  RIG_ERROR_CODES,
  type RigMessage,
  rigErrorCodeOf,
} from './message-types.js';

/** Throws `bad-value` unless `value` is an integer in [min, max]. */
export function checkRange(field: string, value: number, range: { min: number; max: number }): number {
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new RigProtocolError(
      'bad-value',
      `${field} must be an integer in [${range.min}, ${range.max}], got ${value}`,
    );
  }
  return value;
}

function checkVersions(versions: readonly number[]): void {
  for (const [i, v] of versions.entries()) checkRange(`versions[${i}]`, v, { min: 1, max: 255 });
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function stringBytes(field: string, value: string, max: number): Uint8Array {
  const bytes = utf8.encode(value);
  if (bytes.length > max)
    throw new RigProtocolError('bad-value', `${field} is ${bytes.length} UTF-8 bytes, max ${max}`);
  return bytes;
}

function decodeString(field: string, bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch (err) {
    throw new RigProtocolError('bad-value', `${field} is not valid UTF-8`, { cause: err });
  }
}

function bool(field: string, byte: number): boolean {
  if (byte > 1) throw new RigProtocolError('bad-value', `${field} must be 0 or 1, got ${byte}`);
  return byte === 1;
}

/** Encodes a message's payload (not the frame). Throws `bad-value` for fields out of range. */
export function encodePayload(m: RigMessage): Uint8Array {
  switch (m.type) {
    case 'HELLO': {
      checkRange('versions.length', m.versions.length, LIMITS.helloVersions);
      checkVersions(m.versions);
      return Uint8Array.from([m.versions.length, ...m.versions]);
    }
    case 'HELLO_ACK': {
      const fw = stringBytes('firmware', m.firmware, MAX_STRING_BYTES);
      const serial = stringBytes('serial', m.serial, MAX_STRING_BYTES);
      const out = new Uint8Array(7 + fw.length + serial.length);
      const view = new DataView(out.buffer);
      out[0] = checkRange('version', m.version, { min: 1, max: 255 });
      view.setUint32(1, checkRange('capabilities', m.capabilities, { min: 0, max: 0xffff_ffff }), true);
      out[5] = fw.length;
      out.set(fw, 6);
      out[6 + fw.length] = serial.length;
      out.set(serial, 7 + fw.length);
      return out;
    }
    case 'PING':
    case 'PONG':
    case 'CONSOLE_DATA': {
      const bytes = m.type === 'CONSOLE_DATA' ? m.data : m.payload;
      checkRange(`${m.type} payload length`, bytes.length, { min: 0, max: MAX_PAYLOAD_BYTES });
      return Uint8Array.from(bytes);
    }
    case 'INFO':
    case 'ACK':
      return new Uint8Array(0);
    case 'INFO_REPLY': {
      const out = new Uint8Array(9);
      new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, m.uptimeUs), true);
      const flags = [m.power, m.lamp, m.chimeLevel === 1, m.chimeWatch, m.console, m.busy];
      out[8] = flags.reduce((acc, on, bit) => acc | (on ? 1 << bit : 0), 0);
      return out;
    }
    case 'PRESS':
    case 'HOLD': {
      const out = new Uint8Array(4);
      const limits = m.type === 'PRESS' ? LIMITS.pressMs : LIMITS.holdMs;
      new DataView(out.buffer).setUint32(0, checkRange('durationMs', m.durationMs, limits), true);
      return out;
    }
    case 'BOUNCE': {
      const out = new Uint8Array(10);
      const view = new DataView(out.buffer);
      view.setUint16(0, checkRange('edges', m.edges, LIMITS.bounceEdges), true);
      view.setUint32(2, checkRange('spacingUs', m.spacingUs, LIMITS.bounceSpacingUs), true);
      view.setUint32(6, checkRange('settleMs', m.settleMs, LIMITS.bounceSettleMs), true);
      return out;
    }
    case 'CHIME_WATCH':
    case 'POWER':
    case 'LAMP':
    case 'CONSOLE':
      return Uint8Array.of(m.on ? 1 : 0);
    case 'ERROR': {
      const detail = stringBytes('detail', m.detail, MAX_PAYLOAD_BYTES - 1);
      const out = new Uint8Array(1 + detail.length);
      out[0] = RIG_ERROR_CODES[m.code];
      out.set(detail, 1);
      return out;
    }
    case 'CHIME_EDGE': {
      const out = new Uint8Array(9);
      out[0] = m.level;
      new DataView(out.buffer).setBigUint64(1, BigInt.asUintN(64, m.tUs), true);
      return out;
    }
  }
}

function expectLength(type: MessageType, p: Uint8Array, length: number): DataView {
  if (p.length !== length) {
    throw new RigProtocolError('bad-length', `${type} payload must be ${length} bytes, got ${p.length}`);
  }
  return new DataView(p.buffer, p.byteOffset, p.byteLength);
}

/** Decodes a payload by message code. Throws `unknown-type`, `bad-length` or `bad-value`. */
export function decodePayload(code: number, p: Uint8Array): RigMessage {
  const type = messageTypeOf(code);
  if (type === undefined) throw new RigProtocolError('unknown-type', `unknown message type 0x${hex(code)}`);
  switch (type) {
    case 'HELLO': {
      const count = p[0] ?? 0;
      expectLength(type, p, 1 + count);
      checkRange('versions.length', count, LIMITS.helloVersions);
      const versions = Array.from(p.subarray(1));
      checkVersions(versions);
      return { type, versions };
    }
    case 'HELLO_ACK': {
      const fwLength = p[5] ?? 0;
      const serialLength = p[6 + fwLength] ?? 0;
      const view = expectLength(type, p, 7 + fwLength + serialLength);
      if (fwLength > MAX_STRING_BYTES || serialLength > MAX_STRING_BYTES) {
        throw new RigProtocolError('bad-value', `HELLO_ACK strings are at most ${MAX_STRING_BYTES} bytes`);
      }
      return {
        type,
        version: checkRange('version', p[0] ?? 0, { min: 1, max: 255 }),
        capabilities: view.getUint32(1, true),
        firmware: decodeString('firmware', p.subarray(6, 6 + fwLength)),
        serial: decodeString('serial', p.subarray(7 + fwLength)),
      };
    }
    case 'PING':
    case 'PONG':
      return { type, payload: Uint8Array.from(p) };
    case 'CONSOLE_DATA':
      return { type, data: Uint8Array.from(p) };
    case 'INFO':
    case 'ACK':
      expectLength(type, p, 0);
      return { type };
    case 'INFO_REPLY': {
      const view = expectLength(type, p, 9);
      const flags = p[8] ?? 0;
      if (flags > 0x3f)
        throw new RigProtocolError('bad-value', `INFO_REPLY flags 0x${hex(flags)} has reserved bits`);
      const bit = (n: number) => (flags & (1 << n)) !== 0;
      return {
        type,
        uptimeUs: view.getBigUint64(0, true),
        power: bit(0),
        lamp: bit(1),
        chimeLevel: bit(2) ? 1 : 0,
        chimeWatch: bit(3),
        console: bit(4),
        busy: bit(5),
      };
    }
    case 'PRESS':
    case 'HOLD': {
      const limits = type === 'PRESS' ? LIMITS.pressMs : LIMITS.holdMs;
      return {
        type,
        durationMs: checkRange('durationMs', expectLength(type, p, 4).getUint32(0, true), limits),
      };
    }
    case 'BOUNCE': {
      const view = expectLength(type, p, 10);
      return {
        type,
        edges: checkRange('edges', view.getUint16(0, true), LIMITS.bounceEdges),
        spacingUs: checkRange('spacingUs', view.getUint32(2, true), LIMITS.bounceSpacingUs),
        settleMs: checkRange('settleMs', view.getUint32(6, true), LIMITS.bounceSettleMs),
      };
    }
    case 'CHIME_WATCH':
    case 'POWER':
    case 'LAMP':
    case 'CONSOLE':
      expectLength(type, p, 1);
      return { type, on: bool('on', p[0] ?? 0) };
    case 'ERROR':
      if (p.length < 1) throw new RigProtocolError('bad-length', 'ERROR payload needs at least a code byte');
      return { type, code: rigErrorCodeOf(p[0] ?? 0), detail: decodeString('detail', p.subarray(1)) };
    case 'CHIME_EDGE': {
      const view = expectLength(type, p, 9);
      return { type, level: bool('level', p[0] ?? 0) ? 1 : 0, tUs: view.getBigUint64(1, true) };
    }
  }
}

export function codeOf(type: MessageType): number {
  return MESSAGE_CODES[type];
}

export function hex(n: number, width = 2): string {
  return n.toString(16).padStart(width, '0');
}
