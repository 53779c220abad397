import { type Logger, silentLogger } from '../../common/logger.js';
import { MqttConnection } from '../../common/mqtt-connection.js';
import { EventWatcher, type VerifiedEvent } from '../../hub/event-watcher.js';
import type { VerifyKey } from '../../proto/index.js';

/** A hub's view of one device on a broker: verified events, as `test-support/doorbell-harness.ts` watches them. */
export class HubWatch {
  readonly events: VerifiedEvent[] = [];
  private readonly listeners = new Set<(e: VerifiedEvent) => void>();
  private readonly connection: MqttConnection;

  constructor(brokerUrl: string, deviceId: string, deviceKey: VerifyKey, logger: Logger = silentLogger()) {
    const watcher = new EventWatcher(new Map([[deviceId, deviceKey]]), logger);
    watcher.on('event', (e) => {
      this.events.push(e);
      for (const l of this.listeners) l(e);
    });
    this.connection = new MqttConnection({
      url: brokerUrl,
      clientId: `doorbell-rig-${process.pid}-${Math.random().toString(16).slice(2)}`,
      logger,
      subscriptions: EventWatcher.subscriptions,
      backoff: { minMs: 100, maxMs: 400 },
    });
    this.connection.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
    this.connection.start();
  }

  /** The first event matching `match` among those received since `sinceNs` (or any), or a future one. */
  waitFor(match: (e: VerifiedEvent) => boolean, timeoutMs: number, what: string): Promise<VerifiedEvent> {
    return new Promise((resolve, reject) => {
      const found = this.events.find(match);
      if (found) return resolve(found);
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        const kinds = this.events.map((e) => e.event.kind).join(', ') || 'nothing';
        reject(new Error(`no ${what} at the hub within ${timeoutMs} ms (received: ${kinds})`));
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

  async stop(): Promise<void> {
    await this.connection.stop();
  }
}
