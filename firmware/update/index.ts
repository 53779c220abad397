import { once } from 'node:events';
import { type Clock, within } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { MqttConnection } from '../../common/mqtt-connection.js';
import type { AuditLog } from '../audit-log.js';
import type { DoorbellConfig } from '../config/schema.js';
import type { EventBody } from '../services/event-signer.js';
import { type HealthProbe, UpdateAgent } from './agent.js';

export { type HealthProbe, RESTART_EXIT_CODE, UpdateAgent } from './agent.js';

/** How long a restart waits for the outbox to drain (the answer and events of the apply). */
const DRAIN_WAIT_MS = 3_000;

export interface OpenUpdatesOptions {
  root: string;
  stateDir: string;
  config: DoorbellConfig['ota'];
  logger: Logger;
  nowMs: () => number;
  clock?: Clock;
  emit: (body: EventBody) => void;
  /** The device's audit log (firmware/audit-log.ts): every update step is an entry. */
  audit: AuditLog;
  /** Resolves once every queued event has been acknowledged by the broker. */
  outboxEmpty: () => Promise<void>;
  /** Stop cleanly and exit 75 (systemd restarts into the chosen slot). */
  onRestart: ((reason: string) => void) | undefined;
}

/**
 * The update agent of a flashed board, writing to the device's audit log. A board whose trust files are unreadable runs
 * without updates (logged as an error): ringing never depends on them.
 */
export async function openUpdates(options: OpenUpdatesOptions): Promise<UpdateAgent | undefined> {
  const { logger } = options;
  try {
    const { audit } = options;
    return await UpdateAgent.open({
      root: options.root,
      stateDir: options.stateDir,
      logger,
      nowMs: options.nowMs,
      audit,
      emit: options.emit,
      maxBundleBytes: options.config.maxBundleBytes,
      trialHealthTimeoutMs: options.config.trialHealthTimeoutMs,
      ...(options.clock ? { clock: options.clock } : {}),
      requestRestart: (reason) => {
        void (async () => {
          await within(options.outboxEmpty(), DRAIN_WAIT_MS, options.clock);
          logger.warn({ reason }, 'restarting for an update');
          if (options.onRestart) options.onRestart(reason);
          else logger.error('no restart handler: restart the daemon to continue the update');
        })();
      },
    });
  } catch (err) {
    logger.error(
      { err, root: options.root },
      'updates over MQTT are unavailable: cannot read the board trust',
    );
    return undefined;
  }
}

/** The trial health check's view of MQTT: connected, and a directly published event acknowledged (PUBACK). */
export function mqttHealthProbe(
  connection: MqttConnection,
  topic: string,
  seal: (body: EventBody) => Uint8Array,
): HealthProbe {
  return {
    connected: async () => {
      if (!connection.connected) await once(connection, 'connected');
    },
    publishAcked: (body) => connection.publish(topic, seal(body), { qos: 1 }),
  };
}
