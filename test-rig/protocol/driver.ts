import { type Logger, silentLogger } from '../../common/logger.js';
import {
  asHandshakeError,
  type BounceOptions,
  bounceDurationMs,
  type ChimeEdge,
  checkArg,
  checkChosenVersion,
  expectReply,
  identityOf,
  RequestIds,
  type RigDriverOptions,
  type RigIdentity,
  type RigInfo,
  requireCapability,
} from './driver-support.js';
import { asDisconnected, type CodecErrorKind, isRigError, RigProtocolError } from './errors.js';
import type { Frame } from './frame.js';
import { Keepalive, Reconnector } from './link-upkeep.js';
import {
  HANDSHAKE_FRAME_VERSION,
  LIMITS,
  MAX_PAYLOAD_BYTES,
  type MessageOf,
  type MessageType,
  type RigMessage,
  SUPPORTED_VERSIONS,
} from './message-types.js';
import { FrameParser } from './parser.js';
import type { RigTransport } from './transport.js';
import { routeUnsolicited, UnsolicitedListeners } from './unsolicited.js';
import { rigReplyWaiter } from './waiter.js';
import { flushBytes, writeFrame } from './writer.js';

export type { RigDriverOptions } from './driver-support.js';

/**
 * How many times a request that changes nothing on the rig, or sets a state
 * to a given value (HELLO, PING, INFO, CHIME_WATCH, POWER, LAMP, CONSOLE), is
 * sent before it fails for want of a reply. A frame lost on a noisy link (or a
 * rig still starting) then costs one reply deadline. Actions (PRESS, HOLD,
 * BOUNCE) are sent once: repeating one blindly could press twice.
 */
export const REQUEST_ATTEMPTS = 4;

const REPEATABLE: ReadonlySet<MessageType> = new Set([
  'HELLO',
  'PING',
  'INFO',
  'CHIME_WATCH',
  'POWER',
  'LAMP',
  'CONSOLE',
]);

/**
 * Drives a test rig over a RigTransport. The constructor only assigns;
 * `open()` does the handshake. Every request resolves when the rig answered
 * ACK (or its reply), which for actions means the action has finished, and
 * rejects with RigProtocolError: `rejected` (the rig's ERROR, with `rigCode`),
 * `timeout` (naming the request), `disconnected`, `closed` or `unsupported`.
 * Bad arguments throw TypeError before anything is sent.
 */
export class RigDriver {
  private readonly logger: Logger;
  private readonly waiter = rigReplyWaiter<Frame>();
  private readonly ids = new RequestIds();
  private readonly parser = new FrameParser();
  private readonly chime = new UnsolicitedListeners<ChimeEdge>('chime', () => this.logger);
  private readonly consoleOut = new UnsolicitedListeners<Uint8Array>('console', () => this.logger);
  private readonly rigErrors: Record<string, number> = {};
  private rig: RigIdentity | undefined;
  private connected = false;
  private readonly keepalive: Keepalive;
  private closed = false;
  private reconnector: Reconnector | undefined;

  constructor(
    private transport: RigTransport,
    private readonly options: RigDriverOptions = {},
  ) {
    this.logger = (options.logger ?? silentLogger()).child({ module: 'rig-driver' });
    this.keepalive = new Keepalive(options.keepaliveMs ?? 1000, () => {
      if (this.connected) this.ping().catch((err: unknown) => this.logger.debug({ err }, 'keepalive failed'));
    });
  }

  /** Attaches to the transport and negotiates a version. Throws `handshake` when the rig will not. */
  async open(): Promise<RigIdentity> {
    if (this.closed) throw new RigProtocolError('closed', 'rig driver is closed');
    try {
      return await this.attach(this.transport);
    } catch (err) {
      this.connected = false;
      await this.transport.close().catch(() => undefined);
      throw err;
    }
  }

  /** What the rig said in the handshake; undefined before `open()`. */
  get identity(): RigIdentity | undefined {
    return this.rig;
  }

  /** Frames the driver rejected, by kind: the link's health. */
  get linkErrors(): Readonly<Record<CodecErrorKind, number>> {
    return this.parser.errorCounts;
  }

  /**
   * Frames the rig rejected (its `ERROR` with request id 0: a bad CRC or length
   * on the way to the rig), by error code: the other direction's health.
   */
  get rigLinkErrors(): Readonly<Record<string, number>> {
    return this.rigErrors;
  }

  /** Echoes `payload` (at most 504 bytes) and measures the round trip. */
  async ping(payload: Uint8Array = new Uint8Array(0)): Promise<{ payload: Uint8Array; roundTripMs: number }> {
    checkArg('payload.length', payload.length, { min: 0, max: MAX_PAYLOAD_BYTES });
    let start = 0;
    const pong = await this.request({ type: 'PING', payload }, 'PONG', 0, undefined, () => {
      start = performance.now();
    });
    return { payload: pong.payload, roundTripMs: performance.now() - start };
  }

  async info(): Promise<RigInfo> {
    const { type: _type, ...info } = await this.request({ type: 'INFO' }, 'INFO_REPLY', 0);
    return info;
  }

  /** Presses the button line for `ms`; resolves after the release. */
  async press(ms: number): Promise<void> {
    requireCapability(this.rig, 'button');
    await this.request({ type: 'PRESS', durationMs: checkArg('ms', ms, LIMITS.pressMs) }, 'ACK', ms);
  }

  /** Like press, for long holds (up to 10 minutes). */
  async hold(ms: number): Promise<void> {
    requireCapability(this.rig, 'button');
    await this.request({ type: 'HOLD', durationMs: checkArg('ms', ms, LIMITS.holdMs) }, 'ACK', ms);
  }

  /** Toggles the button line `edges` times, `spacingUs` apart, then holds it settled `settleMs`. */
  async bounce(options: BounceOptions): Promise<void> {
    requireCapability(this.rig, 'bounce');
    const duration = bounceDurationMs(options);
    await this.request({ type: 'BOUNCE', ...options }, 'ACK', duration);
  }

  /**
   * Calls `listener` with every chime line edge (rig-timestamped). The first
   * listener turns watching on; the returned function removes the listener,
   * and the last removal turns watching off.
   */
  async watchChime(listener: (edge: ChimeEdge) => void): Promise<() => Promise<void>> {
    requireCapability(this.rig, 'chime');
    return this.chime.add(listener, (on) => this.setFlag('CHIME_WATCH', on));
  }

  async power(on: boolean): Promise<void> {
    requireCapability(this.rig, 'power');
    await this.setFlag('POWER', on);
  }

  async lamp(on: boolean): Promise<void> {
    requireCapability(this.rig, 'lamp');
    await this.setFlag('LAMP', on);
  }

  /** Forwards the board's serial console to `listener`, like watchChime. */
  async console(listener: (bytes: Uint8Array) => void): Promise<() => Promise<void>> {
    requireCapability(this.rig, 'console');
    return this.consoleOut.add(listener, (on) => this.setFlag('CONSOLE', on));
  }

  /** Rejects pending requests with `closed`, stops reconnecting and closes the transport. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    this.keepalive.stop();
    this.reconnector?.stop();
    this.waiter.rejectAll(new RigProtocolError('closed', 'rig driver closed while the request was pending'));
    await this.transport.close();
  }

  private async attach(transport: RigTransport): Promise<RigIdentity> {
    this.parser.reset();
    transport.onData((bytes) => {
      if (transport === this.transport) this.receive(bytes);
    });
    transport.onClose((err) => {
      if (transport === this.transport) this.lost(err);
    });
    this.connected = true;
    await transport.write(flushBytes());
    const versions = [...(this.options.versions ?? SUPPORTED_VERSIONS)];
    const hello = { type: 'HELLO', versions } as const;
    const ack = await this.request(hello, 'HELLO_ACK', 0, HANDSHAKE_FRAME_VERSION).catch((err: unknown) => {
      throw asHandshakeError(err);
    });
    checkChosenVersion(ack.version, versions);
    this.rig = identityOf(ack);
    this.keepalive.start();
    this.logger.info({ rig: this.rig }, 'rig connected');
    return this.rig;
  }

  private async setFlag(type: 'CHIME_WATCH' | 'POWER' | 'LAMP' | 'CONSOLE', on: boolean): Promise<void> {
    await this.request({ type, on } as RigMessage, 'ACK', 0);
  }

  /**
   * Sends `message` and waits for its reply; a repeatable request is sent again
   * (with a new id) when its reply does not come, at most REQUEST_ATTEMPTS
   * times. `onSend` runs just before each attempt is written.
   */
  private async request<T extends MessageType>(
    message: RigMessage,
    expect: T,
    durationMs: number,
    version = this.rig?.version ?? HANDSHAKE_FRAME_VERSION,
    onSend?: () => void,
  ): Promise<MessageOf<T>> {
    const attempts = REPEATABLE.has(message.type) ? REQUEST_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        onSend?.();
        return await this.requestOnce(message, expect, durationMs, version);
      } catch (err) {
        if (!isRigError(err, 'timeout') || attempts === 1) throw err;
        if (attempt >= attempts) {
          throw new RigProtocolError('timeout', `${err.message} (sent ${attempts} times)`, {
            cause: err,
            ...(err.requestId !== undefined ? { requestId: err.requestId } : {}),
          });
        }
        this.logger.debug({ request: message.type, attempt }, 'no reply, sending the request again');
      }
    }
  }

  private async requestOnce<T extends MessageType>(
    message: RigMessage,
    expect: T,
    durationMs: number,
    version: number,
  ): Promise<MessageOf<T>> {
    if (this.closed) throw new RigProtocolError('closed', `${message.type}: rig driver is closed`);
    if (!this.connected) throw new RigProtocolError('disconnected', `${message.type}: rig is disconnected`);
    const id = this.ids.next((n) => this.waiter.has(n));
    const bytes = writeFrame({ version, id, message });
    const reply = this.waiter.wait(id, message.type, durationMs + (this.options.replyMarginMs ?? 1000));
    this.transport.write(bytes).catch((err: unknown) => {
      this.waiter.fail(id, asDisconnected(err, `writing ${message.type} (request #${id})`));
    });
    return expectReply((await reply).message, expect, message.type, id);
  }

  private receive(bytes: Uint8Array): void {
    const { frames, errors } = this.parser.push(bytes);
    for (const err of errors) {
      this.logger.warn({ kind: err.kind, err: err.message }, 'rig frame rejected');
      if (err.requestId !== undefined && err.requestId !== 0) this.waiter.fail(err.requestId, err);
    }
    for (const frame of frames) {
      const m = frame.message;
      if (frame.id !== 0) {
        if (!this.waiter.deliver(frame.id, frame))
          this.logger.warn({ id: frame.id, type: m.type }, 'late reply');
      } else if (m.type === 'ERROR') {
        this.rigErrors[m.code] = (this.rigErrors[m.code] ?? 0) + 1;
        this.logger.warn({ code: m.code, detail: m.detail }, 'the rig rejected a frame');
      } else if (!routeUnsolicited(m, this.chime, this.consoleOut)) {
        this.logger.warn({ message: m }, 'unsolicited message from the rig');
      }
    }
  }

  private lost(err: Error | undefined): void {
    if (this.closed || !this.connected) return;
    this.connected = false;
    this.keepalive.stop();
    this.logger.warn({ err }, 'rig transport lost');
    this.waiter.rejectAll(asDisconnected(err, 'rig transport closed'));
    const reconnect = this.options.reconnect;
    if (reconnect === undefined) return;
    const attempt = () => this.reattach(reconnect);
    this.reconnector ??= new Reconnector(
      this.options.backoff ?? { minMs: 100, maxMs: 5000 },
      attempt,
      this.logger,
    );
    this.reconnector.start();
  }

  private async reattach(reconnect: () => Promise<RigTransport>): Promise<void> {
    const transport = await reconnect();
    if (this.closed) return void (await transport.close());
    this.transport = transport;
    try {
      await this.attach(transport);
      await this.chime.resume();
      await this.consoleOut.resume();
    } catch (err) {
      this.connected = false;
      await transport.close().catch(() => undefined);
      throw err;
    }
  }
}
