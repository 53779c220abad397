// `watch`: verified events and statuses from every pinned doorbell, through a persistent session.
import { once } from 'node:events';
import { lowerBackgroundThreads } from '../../common/background-threads.js';
import { type BrokerProblem, describeBrokerProblem } from '../../common/broker-errors.js';
import { MqttConnection } from '../../common/mqtt-connection.js';
import { loadOrCreateSigningKey } from '../../proto/index.js';
import { keepPublishedCheckpoints } from '../audit/checkpoints.js';
import { hubClientId } from '../client-id.js';
import { EventWatcher } from '../event-watcher.js';
import { describeEvent, eventToJson } from '../format.js';
import { hubKeyPath, loadDevices } from '../hub-state.js';
import type { Context } from './context.js';

/** How long the broker keeps a watching hub's session (and its queued events) while it is away. */
export const WATCH_SESSION_S = 7 * 24 * 3600;

export async function connectWatcher(
  ctx: Context,
  session?: { purpose: string },
): Promise<{ connection: MqttConnection; watcher: EventWatcher; devices: number }> {
  const devices = await loadDevices(ctx.stateDir);
  if (devices.size === 0) ctx.logger.warn('no devices pinned: every event will be rejected (see add-device)');
  const watcher = new EventWatcher(devices, ctx.logger.child({ module: 'watcher' }));
  const connection = new MqttConnection({
    url: ctx.broker,
    clientId: session ? hubClientId(ctx.tls, session.purpose, 'stable') : hubClientId(ctx.tls, '', 'unique'),
    persistentSessionS: session ? WATCH_SESSION_S : undefined,
    logger: ctx.logger.child({ module: 'mqtt' }),
    subscriptions: EventWatcher.subscriptions,
    maximumPacketSize: EventWatcher.maxPacketBytes,
    tls: ctx.tls,
  });
  connection.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
  return { connection, watcher, devices: devices.size };
}

export async function watch(ctx: Context): Promise<number> {
  // One persistent session per hub key: events that arrive while the watcher is away wait at the broker.
  const { key } = await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir));
  const { connection, watcher } = await connectWatcher(ctx, { purpose: `watch-${key.keyId}` });
  keepPublishedCheckpoints(watcher, ctx.stateDir, ctx.logger);
  watcher.on('event', (e) => {
    process.stdout.write(`${ctx.json ? JSON.stringify(eventToJson(e)) : describeEvent(e)}\n`);
  });
  watcher.on('rejected', (r) => {
    if (ctx.json) process.stdout.write(`${JSON.stringify({ rejected: r })}\n`);
  });
  connection.start();
  // V8's compiler and GC helpers must not delay the events on their way in (see docs/architecture.md).
  const threads = lowerBackgroundThreads(ctx.logger);
  // Until the first connection, a cause retrying cannot fix ends the watch with that cause;
  // once connected, the watch waits out any outage.
  const unreachable = new Promise<string>((resolve) => {
    const onProblem = (p: BrokerProblem): void => {
      if (p.permanent) resolve(describeBrokerProblem(p));
    };
    connection.on('problem', onProblem);
    connection.once('connected', () => connection.off('problem', onProblem));
  });
  const ended = await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM'), unreachable]);
  threads.stop();
  await connection.stop();
  if (typeof ended === 'string') {
    process.stderr.write(`doorbell-hub: cannot reach the broker at ${ctx.broker}: ${ended}\n`);
    return 1;
  }
  return 0;
}
