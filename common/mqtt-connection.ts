import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { Backoff } from './backoff.js';
import type { Logger } from './logger.js';

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
}

export interface ConnectionEvents {
  connected: [];
  disconnected: [reason: string];
  message: [topic: string, payload: Buffer, packet: IPublishPacket];
}

/**
 * One MQTT 5 connection that comes back by itself: reconnects with
 * exponential backoff and full jitter, re-subscribes after every connect,
 * and never throws into the event loop. mqtt.js's own fixed-period
 * reconnect is disabled in favour of the backoff.
 */
export class MqttConnection extends EventEmitter<ConnectionEvents> {
  private client: MqttClient | undefined;
  private readonly backoff: Backoff;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private isConnected = false;

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
    client.on('connect', () => {
      // Small, latency-sensitive messages: do not let Nagle's algorithm hold them back.
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.isConnected = true;
      this.backoff.reset();
      logger.info({ url: this.options.url }, 'mqtt connected');
      for (const topic of this.options.subscriptions ?? []) {
        client.subscribe(topic, { qos: 1 }, (err, granted) => {
          const refused = granted?.find((g) => g.qos >= 0x80);
          if (err || refused) logger.error({ topic, err, refused }, 'mqtt subscribe refused');
        });
      }
      this.emit('connected');
    });
    client.on('message', (topic, payload, packet) => this.emit('message', topic, payload, packet));
    client.on('error', (err) => logger.warn({ err: err.message }, 'mqtt error'));
    client.on('close', () => {
      const was = this.isConnected;
      this.isConnected = false;
      if (was) this.emit('disconnected', 'connection closed');
      this.scheduleReconnect();
    });
  }

  /** Publishes and resolves once the broker acknowledged (QoS 1) or the bytes were written (QoS 0). */
  publish(topic: string, payload: Uint8Array, opts: { qos: 0 | 1; retain?: boolean }): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('mqtt connection not started'));
    return new Promise((resolve, reject) => {
      client.publish(topic, Buffer.from(payload), { qos: opts.qos, retain: opts.retain ?? false }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  async stop(options: { beforeClose?: () => Promise<void> } = {}): Promise<void> {
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    if (!client) return;
    if (this.isConnected && options.beforeClose) {
      await options
        .beforeClose()
        .catch((err: unknown) =>
          this.options.logger.warn({ err: String(err) }, 'mqtt: final publish failed'),
        );
    }
    await new Promise<void>((resolve) => client.end(!this.isConnected, {}, () => resolve()));
    this.isConnected = false;
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
      client.reconnect();
    }, delay);
  }

  private currentWill(): IClientOptions['will'] {
    const will = this.options.will?.();
    if (!will) return undefined;
    return { topic: will.topic, payload: Buffer.from(will.payload), qos: will.qos, retain: will.retain };
  }

  private clientOptions(): IClientOptions {
    const { tls } = this.options;
    return {
      clientId: this.options.clientId,
      protocolVersion: 5,
      clean: this.options.persistentSessionS === undefined,
      properties:
        this.options.persistentSessionS === undefined
          ? undefined
          : { sessionExpiryInterval: this.options.persistentSessionS },
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
