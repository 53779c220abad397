import type { BackoffOptions } from '../../common/backoff.js';
import type { Logger } from '../../common/logger.js';
import { isRigError, RigProtocolError } from './errors.js';
import {
  CAPABILITIES,
  LIMITS,
  type MessageOf,
  type MessageType,
  type RigCapability,
  type RigMessage,
} from './message-types.js';
import type { RigTransport } from './transport.js';

export interface RigDriverOptions {
  logger?: Logger;
  /** Added to each request's own duration (a press's length) to give its reply deadline. Default 1000 ms. */
  replyMarginMs?: number;
  /** Versions offered in HELLO. Default: all this implementation speaks. */
  versions?: readonly number[];
  /** Called after an unexpected disconnect to get a fresh transport; retried with backoff until `close()`. */
  reconnect?: () => Promise<RigTransport>;
  /** Delays between reconnect attempts. Default 100 ms doubling up to 5 s, with jitter. */
  backoff?: BackoffOptions;
  /**
   * PING the rig this often (ms) while connected; 0 turns it off. Default 1000.
   * A far end that vanished is often only noticed at the next write (a hung-up
   * pty reads as end-of-file forever and node-serialport keeps retrying): the
   * keepalive's write fails and the transport closes with an error.
   */
  keepaliveMs?: number;
}

/** What the rig said about itself in HELLO_ACK. */
export interface RigIdentity {
  /** The protocol version the rig chose. */
  version: number;
  firmware: string;
  serial: string;
  capabilities: RigCapability[];
}

/** The rig's state, from INFO: the INFO_REPLY fields (`busy`: a PRESS, HOLD or BOUNCE is running). */
export type RigInfo = Omit<MessageOf<'INFO_REPLY'>, 'type'>;

export interface ChimeEdge {
  level: 0 | 1;
  /** Rig-monotonic microseconds: comparable between edges of one rig session only. */
  tUs: bigint;
}

export interface BounceOptions {
  edges: number;
  spacingUs: number;
  settleMs: number;
}

export function identityOf(ack: MessageOf<'HELLO_ACK'>): RigIdentity {
  const capabilities = (Object.keys(CAPABILITIES) as RigCapability[]).filter(
    (c) => (ack.capabilities & CAPABILITIES[c]) !== 0,
  );
  return { version: ack.version, firmware: ack.firmware, serial: ack.serial, capabilities };
}

/** Bad arguments are TypeErrors naming the field and value (nothing was sent). */
export function checkArg(field: string, value: number, range: { min: number; max: number }): number {
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new TypeError(`rig: ${field} must be an integer in [${range.min}, ${range.max}], got ${value}`);
  }
  return value;
}

/** How long a bounce takes on the rig, in milliseconds: its reply comes after that. */
export function bounceDurationMs(o: BounceOptions): number {
  checkArg('edges', o.edges, LIMITS.bounceEdges);
  checkArg('spacingUs', o.spacingUs, LIMITS.bounceSpacingUs);
  checkArg('settleMs', o.settleMs, LIMITS.bounceSettleMs);
  return Math.ceil((o.edges * o.spacingUs) / 1000) + o.settleMs;
}

/** Request ids 1..65535, wrapping around and skipping 0 and ids still in flight. */
export class RequestIds {
  private last = 0;

  next(inFlight: (id: number) => boolean): number {
    for (let tries = 0; tries < 0xffff; tries++) {
      this.last = this.last >= 0xffff ? 1 : this.last + 1;
      if (!inFlight(this.last)) return this.last;
    }
    throw new TypeError('rig: all 65535 request ids are in flight');
  }
}

/** The reply when it is of the expected type; ERROR becomes `rejected` with the rig's code. */
export function expectReply<T extends MessageType>(
  answer: RigMessage,
  expect: T,
  request: MessageType,
  id: number,
): MessageOf<T> {
  if (answer.type === 'ERROR') {
    const detail = answer.detail === '' ? '' : `: ${answer.detail}`;
    throw new RigProtocolError(
      'rejected',
      `rig refused ${request} (request #${id}): ${answer.code}${detail}`,
      {
        rigCode: answer.code,
        requestId: id,
      },
    );
  }
  if (answer.type !== expect) {
    throw new RigProtocolError(
      'unknown-type',
      `rig answered ${request} (request #${id}) with ${answer.type}`,
      {
        requestId: id,
      },
    );
  }
  return answer as MessageOf<T>;
}

/** A failed HELLO becomes `handshake`, except when the link itself is gone. */
export function asHandshakeError(err: unknown): unknown {
  if (!isRigError(err) || err.kind === 'disconnected' || err.kind === 'closed') return err;
  return new RigProtocolError('handshake', `rig handshake failed: ${err.message}`, { cause: err });
}

export function checkChosenVersion(chosen: number, offered: readonly number[]): void {
  if (!offered.includes(chosen)) {
    throw new RigProtocolError('handshake', `rig chose version ${chosen}, offered ${offered.join(', ')}`);
  }
}

/** Throws `unsupported` when the rig said in HELLO_ACK that it lacks `capability`. */
export function requireCapability(rig: RigIdentity | undefined, capability: RigCapability): void {
  if (rig !== undefined && !rig.capabilities.includes(capability)) {
    throw new RigProtocolError('unsupported', `rig ${rig.serial} has no ${capability} capability`);
  }
}
