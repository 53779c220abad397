import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { Backoff } from './backoff.js';
import {
  type BrokerCause,
  type BrokerProblem,
  classifyBrokerError,
  describeBrokerProblem,
} from './broker-errors.js';
import type { Logger } from './logger.js';
import { PacketSizeGuard } from './mqtt-frames.js';

/**
 * How long `stop` waits for each of its steps: the caller's final publish
 * (with its PUBACK), then the DISCONNECT and the socket's close. Past either
 * deadline it goes on (and in the end closes the socket itself), so a stop
 * ends within about twice this whatever the broker or the network does.
 */
export const STOP_STEP_TIMEOUT_MS = 2_000;

export interface WillMessage {
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1;
  retain: boolean;
}

export interface TlsFiles {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

export interface MqttConnectionOptions {
  url: string;
  clientId: string;
  logger: Logger;
  keepaliveS?: number;
  backoff?: { minMs: number; maxMs: number };
  /** Topics (QoS 1) subscribed again after every (re)connect. */
  subscriptions?: string[];
  /** Computed before every connect so that a signed will is always fresh. */
  will?: () => WillMessage | undefined;
  tls?: TlsFiles;
  username?: string | undefined;
  password?: string | undefined;
  /**
   * Keep the MQTT 5 session (subscriptions and queued QoS 1 messages) at the
   * broker for this long while disconnected: a hub that restarts or loses
   * the link then receives what arrived meanwhile. Needs a stable client id.
   */
  persistentSessionS?: number;
  /**
   * The MQTT 5 Maximum Packet Size announced in CONNECT, in bytes: a compliant
   * broker never sends a larger packet (Mosquitto drops such a message for this
   * client and logs it). A packet larger by more than one byte (Mosquitto's
   * miscount, see guardPacketSize) that arrives anyway closes the connection
   * as soon as its fixed header is read, before its body.
   */
  maximumPacketSize?: number;
}

export interface ConnectionEvents {
  connected: [];
  /** The broker answered this connection's subscriptions (after every `connected`). */
  subscribed: [];
  disconnected: [reason: string];
  /** Why connecting failed, classified (common/broker-errors.ts); on every failed attempt. */
  problem: [BrokerProblem];
  message: [topic: string, payload: Buffer, packet: IPublishPacket];
}

/**
 * One MQTT 5 connection that comes back by itself: reconnects with
 * exponential backoff and full jitter, re-subscribes after every connect,
 * and never throws into the event loop (an exception in a `message`
 * listener is logged; the connection and the next message go on). mqtt.js's
 * own fixed-period reconnect is disabled in favour of the backoff.
 *
 * A QoS 1 publish lives on one network connection: it resolves on that
 * connection's PUBACK and rejects when the connection closes first. Nothing
 * is re-sent underneath: every reconnect starts mqtt.js with an empty
 * outgoing store (`client.reconnect()`), and what waited for a PUBACK on the
 * old connection is removed from mqtt.js at its close. Re-sending, on a new
 * connection, is the caller's decision.
 */
export class MqttConnection extends EventEmitter<ConnectionEvents> {
  private client: MqttClient | undefined;
  private readonly backoff: Backoff;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private isConnected = false;
  private lastProblem: BrokerCause | undefined;
  /** Fails each publish of the current connection not yet settled (QoS 1: no PUBACK yet). */
  private readonly unsettled = new Set<(err: Error) => void>();

  constructor(private readonly options: MqttConnectionOptions) {
    super();
    this.backoff = new Backoff(options.backoff ?? { minMs: 250, maxMs: 30_000 });
  }

  get connected(): boolean {
    return this.isConnected;
  }

  start(): void {
    if (this.client) return;
    const { logger } = this.options;
    const client = connect(this.options.url, this.clientOptions());
    this.client = client;
    const { maximumPacketSize } = this.options;
    if (maximumPacketSize !== undefined) {
      // Every connect makes a new socket and writes CONNECT to it before a byte can arrive:
      // the first one inside `connect` above, the others on `client.reconnect()`.
      this.guardPacketSize(client, maximumPacketSize);
      client.on('packetsend', (packet) => {
        if (packet.cmd === 'connect') this.guardPacketSize(client, maximumPacketSize);
      });
    }
    client.on('connect', () => {
      // Small, latency-sensitive messages: do not let Nagle's algorithm hold them back.
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.isConnected = true;
      this.lastProblem = undefined;
      this.backoff.reset();
      logger.info({ url: this.options.url }, 'mqtt connected');
      this.subscribe(client);
      this.emit('connected');
    });
    client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, packet));
    client.on('error', (err) => {
      const problem = classifyBrokerError(err, this.options.url);
      // Said once per cause, not once per retry.
      if (problem.cause !== this.lastProblem) {
        logger.warn({ cause: problem.cause, err: err.message.slice(0, 300) }, describeBrokerProblem(problem));
        this.lastProblem = problem.cause;
      }
      this.emit('problem', problem);
    });
    client.on('close', () => {
      this.markDisconnected('connection closed');
      // mqtt.js keeps a QoS 1 publish of a closed connection waiting for a PUBACK that cannot
      // come (and `end` would wait for it): remove it. Subscriptions it already failed.
      for (const [id, pending] of Object.entries(client.outgoing)) {
        if (!pending.volatile) client.removeOutgoingMessage(Number(id));
      }
      this.scheduleReconnect();
    });
  }

  /**
   * Treats the current connection as broken (the caller waited too long for an
   * answer on it): closes it at once without DISCONNECT, fails what waits for
   * a PUBACK on it, and reconnects with backoff.
   */
  dropConnection(reason: string): void {
    const client = this.client;
    if (!client || !this.isConnected || this.stopping) return;
    this.options.logger.warn({ reason }, 'mqtt: dropping the connection');
    this.markDisconnected(reason);
    client.stream.destroy();
  }

  /**
   * Publishes and resolves once the broker acknowledged (QoS 1) or the bytes
   * were written (QoS 0). Rejects at once while disconnected, and when the
   * connection closes before the PUBACK. `dup` marks a QoS 1 message the
   * caller sent before, on an earlier connection.
   */
  publish(
    topic: string,
    payload: Uint8Array,
    opts: { qos: 0 | 1; retain?: boolean; dup?: boolean },
  ): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('mqtt connection not started'));
    if (!this.isConnected) return Promise.reject(new Error('mqtt: not connected'));
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        this.unsettled.delete(fail);
        if (err) reject(err);
        else resolve();
      };
      const fail = (err: Error): void => settle(err);
      this.unsettled.add(fail);
      client.publish(
        topic,
        Buffer.from(payload),
        { qos: opts.qos, retain: opts.retain ?? false, dup: opts.dup ?? false },
        (err) => settle(err ?? undefined),
      );
    });
  }

  /**
   * Disconnects: runs `beforeClose` (a final publish) while connected, then
   * sends DISCONNECT and waits for the socket to close. Each step has
   * STOP_STEP_TIMEOUT_MS; past the last one the socket is destroyed, so this
   * ends whatever the broker does.
   */
  async stop(options: { beforeClose?: () => Promise<void> } = {}): Promise<void> {
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    if (!client) return;
    const { logger } = this.options;
    if (this.isConnected && options.beforeClose) {
      const outcome = await within(options.beforeClose(), STOP_STEP_TIMEOUT_MS);
      if (outcome === 'timeout') {
        logger.warn({ timeoutMs: STOP_STEP_TIMEOUT_MS }, 'mqtt: final publish not acknowledged in time');
      } else if (outcome !== 'done') {
        logger.warn({ err: String(outcome.error) }, 'mqtt: final publish failed');
      }
    }
    // Nothing still waiting for a PUBACK gets one before the end; mqtt.js would hold DISCONNECT back for it.
    this.failUnsettled(new Error('mqtt: stopped before the broker answered'));
    for (const [id, pending] of Object.entries(client.outgoing)) {
      if (!pending.volatile) client.removeOutgoingMessage(Number(id));
    }
    const ended = new Promise<void>((resolve) => client.end(!this.isConnected, {}, () => resolve()));
    if ((await within(ended, STOP_STEP_TIMEOUT_MS)) === 'timeout') {
      logger.warn({ timeoutMs: STOP_STEP_TIMEOUT_MS }, 'mqtt: no orderly close in time; closing the socket');
      client.stream.destroy();
    }
    this.isConnected = false;
  }

  private markDisconnected(reason: string): void {
    const was = this.isConnected;
    this.isConnected = false;
    this.failUnsettled(new Error(`mqtt: the connection ended (${reason}) before the broker answered`));
    if (was) this.emit('disconnected', reason);
  }

  private failUnsettled(err: Error): void {
    for (const fail of [...this.unsettled]) fail(err);
  }

  private subscribe(client: MqttClient): void {
    const topics = this.options.subscriptions ?? [];
    if (topics.length === 0) {
      this.emit('subscribed');
      return;
    }
    client.subscribe(topics, { qos: 1 }, (err, granted) => {
      const refused = granted?.filter((g) => g.qos >= 0x80);
      if (err || (refused && refused.length > 0)) {
        this.options.logger.error({ topics, err, refused }, 'mqtt subscribe refused');
      }
      if (!err && this.isConnected) this.emit('subscribed');
    });
  }

  /** Hands a message to each listener; what one throws is logged and goes no further. */
  private dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    for (const listener of this.rawListeners('message')) {
      try {
        listener(topic, payload, packet);
      } catch (err) {
        this.options.logger.error({ err, topic, bytes: payload.length }, 'mqtt: a message listener failed');
      }
    }
  }

  /**
   * Reads the fixed header of every packet arriving on the new socket and
   * closes it at the first one above the accepted size: mqtt.js would read the
   * whole packet (up to 256 MiB) before comparing. At most the chunk holding
   * the header reaches mqtt.js's parser.
   */
  private guardPacketSize(client: MqttClient, maximumPacketSize: number): void {
    // Mosquitto (2.0.11, still in 2.0.18) leaves the fixed header's first byte out when it
    // compares a packet with the announced size, so it sends packets one byte larger: they are
    // accepted rather than taken for a broken connection. CONNECT has already copied the
    // announced size; mqtt.js's own check reads this option when a packet arrives, and the next
    // reconnect announces `maximumPacketSize` again (scheduleReconnect).
    const accepted = maximumPacketSize + 1;
    if (client.options.properties) client.options.properties.maximumPacketSize = accepted;
    const stream = client.stream;
    const guard = new PacketSizeGuard(accepted);
    const onData = (chunk: Buffer): void => {
      const announced = guard.feed(chunk);
      if (announced === undefined) return;
      stream.off('data', onData);
      this.options.logger.error(
        { packetBytes: announced, maximumPacketSize, acceptedBytes: accepted },
        'mqtt: incoming packet above the maximum packet size',
      );
      if (client.stream === stream) this.markDisconnected('packet too large');
      stream.destroy();
    };
    stream.on('data', onData);
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer) return;
    const delay = this.backoff.next();
    this.options.logger.debug({ delayMs: delay, attempt: this.backoff.attempts }, 'mqtt reconnect scheduled');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      const client = this.client;
      if (this.stopping || !client) return;
      const will = this.currentWill();
      if (will) client.options.will = will;
      client.options.properties = this.connectProperties();
      client.reconnect();
    }, delay);
  }

  private currentWill(): IClientOptions['will'] {
    const will = this.options.will?.();
    if (!will) return undefined;
    return { topic: will.topic, payload: Buffer.from(will.payload), qos: will.qos, retain: will.retain };
  }

  private connectProperties(): IClientOptions['properties'] {
    const { persistentSessionS, maximumPacketSize } = this.options;
    if (persistentSessionS === undefined && maximumPacketSize === undefined) return undefined;
    return {
      ...(persistentSessionS === undefined ? {} : { sessionExpiryInterval: persistentSessionS }),
      ...(maximumPacketSize === undefined ? {} : { maximumPacketSize }),
    };
  }

  private clientOptions(): IClientOptions {
    const { tls } = this.options;
    return {
      clientId: this.options.clientId,
      protocolVersion: 5,
      clean: this.options.persistentSessionS === undefined,
      properties: this.connectProperties(),
      keepalive: this.options.keepaliveS ?? 30,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      resubscribe: false,
      queueQoSZero: false,
      will: this.currentWill(),
      username: this.options.username,
      password: this.options.password,
      ca: tls?.ca ? readFileSync(tls.ca) : undefined,
      cert: tls?.cert ? readFileSync(tls.cert) : undefined,
      key: tls?.key ? readFileSync(tls.key) : undefined,
    };
  }
}

/** Waits for `promise` at most `ms`: 'done', 'timeout', or the error it rejected with. */
async function within(promise: Promise<void>, ms: number): Promise<'done' | 'timeout' | { error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise.then(() => 'done' as const), timeout]);
  } catch (error) {
    return { error };
  } finally {
    clearTimeout(timer);
  }
}
