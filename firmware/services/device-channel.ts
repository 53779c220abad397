import { type Clock, systemClock, type TimerHandle } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { MqttConnection } from '../../common/mqtt-connection.js';
import type { Outbox, OutboxEntry } from './outbox.js';

export interface DeviceChannelDeps {
  connection: MqttConnection;
  outbox: Outbox;
  /** A freshly signed status event (ONLINE) for the retained status topic. */
  onlineStatus: () => { topic: string; payload: Uint8Array };
  heartbeatMs: number;
  /**
   * How long the entry in flight may wait for its PUBACK. Past it the
   * connection is taken as broken: it is dropped, and the entry goes again,
   * marked DUP, on the next one.
   */
  ackTimeoutMs: number;
  /** How long to wait before re-sending an entry the broker refused on a live connection. */
  retryMs?: number;
  /** Heartbeat, acknowledgement and retry timers; default the system clock. */
  clock?: Clock;
  logger: Logger;
}

/** One send of the outbox head, on one connection. */
interface Attempt {
  readonly entry: OutboxEntry;
  timer: TimerHandle | undefined;
  /** Settles (never rejects) once the send was acknowledged, refused or abandoned. */
  done: Promise<void>;
}

/**
 * The device's side of MQTT: delivers the outbox in order at QoS 1, one
 * entry in flight, an entry leaving only after the broker's acknowledgement;
 * publishes the retained status on every connect and as a heartbeat.
 * Sending is event-driven: a push while idle and connected goes out in the
 * same tick, so the first event of a press is on the wire before the next
 * one is even signed. Callers are never blocked.
 *
 * A PUBACK that does not come within `ackTimeoutMs` (a broker that drops
 * what it owes this client, a link that swallows packets but stays open)
 * means the connection is broken: MQTT 5 allows a QoS 1 PUBLISH to be sent
 * again only on a new network connection, so the connection is dropped and,
 * once the backoff brings a new one, the head goes again with DUP set. Only
 * the outcome of the current attempt counts: a late answer to an abandoned
 * one neither acknowledges nor sends anything. If the first copy did reach
 * the broker, the hub receives the event twice and drops the second by
 * (device, key, counter).
 */
export class DeviceChannel {
  private stopped = false;
  private heartbeat: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private attempt: Attempt | undefined;
  /** The entry of the latest attempt: sending it again sets DUP. */
  private lastSent: OutboxEntry | undefined;
  private unsubscribe: (() => void) | undefined;

  private readonly clock: Clock;

  constructor(private readonly deps: DeviceChannelDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  start(): void {
    const { connection, outbox } = this.deps;
    connection.on('connected', () => this.kick());
    // ONLINE once the broker confirmed the command subscription: a hub that sees it can send
    // a command and be heard (published on 'connected', a command sent at once could be lost).
    connection.on('subscribed', () => this.publishStatus());
    this.unsubscribe = outbox.onPush(() => this.kick());
    connection.start();
    this.scheduleHeartbeat();
  }

  private scheduleHeartbeat(): void {
    this.heartbeat = this.clock.setTimeout(
      () => {
        this.publishStatus();
        if (!this.stopped) this.scheduleHeartbeat();
      },
      this.deps.heartbeatMs,
      { background: true },
    );
  }

  /**
   * Waits for the entry in flight, publishes the signed OFFLINE status and
   * disconnects, all within the connection's stop deadlines: an entry still
   * unacknowledged then stays in the outbox and goes out after the next start.
   */
  async stop(offline: () => { topic: string; payload: Uint8Array }): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.heartbeat) this.clock.clearTimeout(this.heartbeat);
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    const attempt = this.attempt;
    if (attempt?.timer) this.clock.clearTimeout(attempt.timer);
    await this.deps.connection.stop({
      beforeClose: async () => {
        await attempt?.done;
        const status = offline();
        await this.deps.connection.publish(status.topic, status.payload, { qos: 1, retain: true });
      },
    });
  }

  /** Sends the outbox head if nothing is in flight and the broker is reachable. */
  private kick(): void {
    const { outbox, connection } = this.deps;
    if (this.stopped || this.attempt || this.retryTimer || !connection.connected) return;
    const entry = outbox.head();
    if (!entry) return;
    this.send(entry);
  }

  private send(entry: OutboxEntry): void {
    const dup = this.lastSent === entry;
    this.lastSent = entry;
    const sent = this.deps.connection.publish(entry.topic, entry.payload, {
      qos: 1,
      retain: entry.retain,
      dup,
    });
    const attempt: Attempt = { entry, timer: undefined, done: Promise.resolve() };
    this.attempt = attempt;
    attempt.done = sent.then(
      () => this.settle(attempt, undefined),
      (err: unknown) => this.settle(attempt, err),
    );
    attempt.timer = this.clock.setTimeout(() => this.abandon(attempt), this.deps.ackTimeoutMs);
  }

  private settle(attempt: Attempt, err: unknown): void {
    const { outbox, connection, logger } = this.deps;
    if (attempt.timer) this.clock.clearTimeout(attempt.timer);
    if (this.attempt !== attempt) {
      logger.debug(
        { err: err === undefined ? undefined : String(err) },
        'late answer to an abandoned send ignored',
      );
      return;
    }
    this.attempt = undefined;
    if (err === undefined) {
      outbox.ack(attempt.entry);
      this.kick();
      return;
    }
    if (this.stopped) {
      logger.warn(
        { err: String(err), depth: outbox.depth },
        'event not acknowledged before the stop; it stays queued',
      );
      return;
    }
    logger.warn({ err: String(err), depth: outbox.depth }, 'event not acknowledged; will retry');
    // After a disconnect the reconnect kicks; a refusal on a live connection is retried after a pause.
    if (!connection.connected) return;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, this.deps.retryMs ?? 1_000);
  }

  /** No PUBACK in time: the connection is broken; the head goes again on the next one. */
  private abandon(attempt: Attempt): void {
    if (this.attempt !== attempt || this.stopped) return;
    this.attempt = undefined;
    this.deps.logger.warn(
      { ackTimeoutMs: this.deps.ackTimeoutMs, depth: this.deps.outbox.depth },
      'no PUBACK in time: dropping the connection to send the event again on a new one',
    );
    this.deps.connection.dropConnection(`no PUBACK within ${this.deps.ackTimeoutMs} ms`);
  }

  private publishStatus(): void {
    if (this.stopped || !this.deps.connection.connected) return;
    const status = this.deps.onlineStatus();
    this.deps.connection
      .publish(status.topic, status.payload, { qos: 1, retain: true })
      .catch((err: unknown) => this.deps.logger.warn({ err: String(err) }, 'status publish failed'));
  }
}
