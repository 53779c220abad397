import type { RigProtocolError } from '../protocol/errors.js';
import {
  CAPABILITIES,
  type RigErrorCode,
  type RigMessage,
  SUPPORTED_VERSIONS,
} from '../protocol/message-types.js';

const ALL_CAPABILITIES = Object.values(CAPABILITIES).reduce((a, b) => a | b, 0);

const WITH_ID: readonly string[] = ['bad-length', 'bad-value', 'unknown-type', 'unsupported-version'];

/**
 * docs/rig-protocol.md, "Answering bad frames": a frame failing COBS or the CRC
 * (or a runt / oversize one) cannot be trusted for its id and is answered with
 * id 0; a later check's failure is answered with the frame's id and its code.
 */
export function answerToBadFrame(err: RigProtocolError): { id: number; code: RigErrorCode } {
  if (err.kind === 'bad-cobs' || err.kind === 'bad-crc') return { id: 0, code: 'bad-crc' };
  if (err.requestId === undefined || err.requestId === 0) return { id: 0, code: 'bad-length' };
  return { id: err.requestId, code: (WITH_ID.includes(err.kind) ? err.kind : 'other') as RigErrorCode };
}

/** HELLO_ACK with the highest common version (every capability), or ERROR when there is none. */
export function helloReply(versions: number[], serial: string): RigMessage {
  const common = versions.filter((v) => SUPPORTED_VERSIONS.includes(v));
  if (common.length === 0) {
    return {
      type: 'ERROR',
      code: 'unsupported-version',
      detail: `rig speaks ${SUPPORTED_VERSIONS.join(', ')}`,
    };
  }
  const version = Math.max(...common);
  return { type: 'HELLO_ACK', version, capabilities: ALL_CAPABILITIES, firmware: 'emulator-1.0', serial };
}
