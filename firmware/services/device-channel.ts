import type { Logger } from '../../common/logger.js';
import type { MqttConnection } from '../../common/mqtt-connection.js';
import type { Outbox, OutboxEntry } from './outbox.js';

export interface DeviceChannelDeps {
  connection: MqttConnection;
  outbox: Outbox;
  /** A freshly signed status event (ONLINE) for the retained status topic. */
  onlineStatus: () => { topic: string; payload: Uint8Array };
  heartbeatMs: number;
  /** How long to wait before re-sending an entry the broker did not acknowledge. */
  retryMs?: number;
  logger: Logger;
}

/**
 * The device's side of MQTT: delivers the outbox in order at QoS 1, one
 * entry in flight, an entry leaving only after the broker's acknowledgement;
 * publishes the retained status on every connect and as a heartbeat.
 * Sending is event-driven: a push while idle and connected goes out in the
 * same tick, so the first event of a press is on the wire before the next
 * one is even signed. Callers are never blocked.
 */
export class DeviceChannel {
  private stopped = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: DeviceChannelDeps) {}

  start(): void {
    const { connection, outbox } = this.deps;
    connection.on('connected', () => {
      this.publishStatus();
      this.kick();
    });
    this.unsubscribe = outbox.onPush(() => this.kick());
    connection.start();
    this.heartbeat = setInterval(() => this.publishStatus(), this.deps.heartbeatMs);
    this.heartbeat.unref();
  }

  async stop(offline: () => { topic: string; payload: Uint8Array }): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.deps.connection.stop({
      beforeClose: async () => {
        await this.inFlight;
        const status = offline();
        await this.deps.connection.publish(status.topic, status.payload, { qos: 1, retain: true });
      },
    });
  }

  /** Sends the outbox head if nothing is in flight and the broker is reachable. */
  private kick(): void {
    const { outbox, connection } = this.deps;
    if (this.stopped || this.inFlight || this.retryTimer || !connection.connected) return;
    const entry = outbox.head();
    if (!entry) return;
    this.inFlight = this.send(entry);
  }

  private async send(entry: OutboxEntry): Promise<void> {
    const { outbox, connection, logger } = this.deps;
    try {
      await connection.publish(entry.topic, entry.payload, { qos: 1, retain: entry.retain });
      outbox.ack(entry);
      this.inFlight = undefined;
      this.kick();
    } catch (err) {
      this.inFlight = undefined;
      logger.warn({ err: String(err), depth: outbox.depth }, 'event not acknowledged; will retry');
      // A reconnect kicks again; a refusal on a live connection is retried after a pause.
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, this.deps.retryMs ?? 1_000);
    }
  }

  private publishStatus(): void {
    if (this.stopped || !this.deps.connection.connected) return;
    const status = this.deps.onlineStatus();
    this.deps.connection
      .publish(status.topic, status.payload, { qos: 1, retain: true })
      .catch((err: unknown) => this.deps.logger.warn({ err: String(err) }, 'status publish failed'));
  }
}
