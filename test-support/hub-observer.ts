import type { Logger } from '../common/logger.js';
import { MqttConnection, type TlsFiles } from '../common/mqtt-connection.js';
import { hubClientId } from '../hub/client-id.js';
import { EventWatcher, type VerifiedEvent } from '../hub/event-watcher.js';
import type { VerifyKey } from '../proto/index.js';

/**
 * The verified events a hub sees from pinned devices, kept in order, and a
 * wait for the first that matches (already received or future). What tests
 * and the harness use to wait on the device's signals instead of sleeping.
 */
export class EventLog {
  readonly events: VerifiedEvent[] = [];
  private readonly listeners = new Set<(e: VerifiedEvent) => void>();

  add(e: VerifiedEvent): void {
    this.events.push(e);
    for (const l of this.listeners) l(e);
  }

  /** Resolves with the first event matching `match`; rejects after `timeoutMs`, listing what came. */
  waitFor(match: (e: VerifiedEvent) => boolean, timeoutMs = 10_000, what = 'event'): Promise<VerifiedEvent> {
    return new Promise<VerifiedEvent>((resolve, reject) => {
      const found = this.events.find(match);
      if (found) {
        resolve(found);
        return;
      }
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        const got = this.events.map((e) => e.event.kind).join(', ');
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${got}`));
      }, timeoutMs);
      const listener = (e: VerifiedEvent): void => {
        if (!match(e)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(e);
      };
      this.listeners.add(listener);
    });
  }

  /** The signed command result carrying `correlationId`. */
  result(correlationId: string, timeoutMs = 10_000): Promise<VerifiedEvent> {
    return this.waitFor(
      (e) => e.event.kind === 'commandResult' && e.correlationId === correlationId,
      timeoutMs,
      `the result of ${correlationId}`,
    );
  }
}

export interface HubObserver {
  readonly connection: MqttConnection;
  readonly watcher: EventWatcher;
  readonly log: EventLog;
  stop(): Promise<void>;
}

/** A hub connection on `brokerUrl` verifying every event against the pinned device keys. */
export function observeDevices(
  brokerUrl: string,
  devices: ReadonlyMap<string, VerifyKey>,
  logger: Logger,
  tls?: TlsFiles,
): HubObserver {
  const log = new EventLog();
  const watcher = new EventWatcher(devices, logger);
  watcher.on('event', (e) => log.add(e));
  const connection = new MqttConnection({
    url: brokerUrl,
    // On the locked-down broker the id must be one the hub's certificate owns.
    clientId: hubClientId(tls, 'test', 'unique'),
    logger,
    subscriptions: EventWatcher.subscriptions,
    backoff: { minMs: 100, maxMs: 400 },
    ...(tls ? { tls } : {}),
  });
  connection.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
  connection.start();
  return { connection, watcher, log, stop: () => connection.stop() };
}
