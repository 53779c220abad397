#!/usr/bin/env node
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '../common/logger.js';
import { MqttConnection, type TlsFiles } from '../common/mqtt-connection.js';
import {
  CounterStore,
  doorbell,
  loadOrCreateSigningKey,
  publicKeyToText,
  validateDeviceId,
} from '../proto/index.js';
import { Commander, CommandTimeoutError } from './commander.js';
import { EventWatcher } from './event-watcher.js';
import { describeEvent, eventToJson } from './format.js';
import {
  addDevice,
  defaultHubStateDir,
  HubStateError,
  hubCounterPath,
  hubKeyPath,
  loadDevices,
} from './hub-state.js';

const USAGE = `usage: doorbell-hub <command> [options]

commands:
  keygen                          create this hub's signing key (once) and print its public key
  add-device <device-id> <key>    pin a doorbell's public key (from \`doorbell identity\`)
  devices                         list pinned doorbells
  watch                           print verified events as they arrive
  ring <device-id>                ring the chime as a test; prints the signed result
  status <device-id>              ask a doorbell for its status

options:
  --broker URL       MQTT broker (default mqtt://127.0.0.1:1883; mqtts:// for TLS)
  --ca FILE          TLS: the CA certificate that signed the broker's certificate
  --cert FILE        TLS: this hub's client certificate
  --key FILE         TLS: this hub's client key
  --state-dir DIR    hub keys and pinned devices (default ${defaultHubStateDir()})
  --json             watch: one JSON object per line
  --timeout-ms N     ring/status: how long to wait for the result (default 5000)
  --replace          add-device: replace an already pinned key
  -h, --help         this help`;

const OPTIONS = {
  broker: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'state-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  'timeout-ms': { type: 'string', default: '5000' },
  replace: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

interface Context {
  stateDir: string;
  broker: string;
  tls: TlsFiles;
  json: boolean;
  timeoutMs: number;
  logger: Logger;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new UsageError(`--timeout-ms must be an integer from 1 to 600000, got '${values['timeout-ms']}'`);
  }
  if (!/^mqtts?:\/\/[^\s/]+(:\d+)?\/?$/.test(values.broker)) {
    throw new UsageError(`--broker must look like mqtt://host:port, got '${values.broker}'`);
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError('--cert and --key go together');
  }
  const ctx: Context = {
    stateDir: values['state-dir'] ?? defaultHubStateDir(),
    broker: values.broker,
    tls: { ca: values.ca, cert: values.cert, key: values.key },
    json: values.json,
    timeoutMs,
    logger: createLogger({ name: 'doorbell-hub', level: values.json ? 'warn' : 'info' }),
  };
  const need = (n: number): string[] => {
    if (args.length !== n) throw new UsageError(`'${command}' takes ${n} argument(s), got ${args.length}`);
    return args;
  };
  switch (command) {
    case 'keygen':
      need(0);
      return keygen(ctx);
    case 'add-device': {
      const [id = '', key = ''] = need(2);
      await addDevice(ctx.stateDir, id, key, values.replace);
      process.stdout.write(`pinned ${id}\n`);
      return 0;
    }
    case 'devices':
      need(0);
      for (const [id, key] of await loadDevices(ctx.stateDir))
        process.stdout.write(`${id}  ${publicKeyToText(key)}\n`);
      return 0;
    case 'watch':
      need(0);
      return watch(ctx);
    case 'ring':
      return sendCommand(ctx, need(1)[0] ?? '', { ringChimeTest: {} });
    case 'status':
      return sendCommand(ctx, need(1)[0] ?? '', { getStatus: {} });
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

async function keygen(ctx: Context): Promise<number> {
  const { key, created } = await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir));
  process.stdout.write(
    `${created ? 'created' : 'existing'} hub key ${key.keyId} in ${hubKeyPath(ctx.stateDir)}\n` +
      `public key: ${publicKeyToText(key)}\n` +
      `add it to each doorbell's config under trust.hubKeys\n`,
  );
  return 0;
}

/** How long the broker keeps a watching hub's session (and its queued events) while it is away. */
const WATCH_SESSION_S = 7 * 24 * 3600;

async function connectWatcher(
  ctx: Context,
  session?: { clientId: string },
): Promise<{ connection: MqttConnection; watcher: EventWatcher }> {
  const devices = await loadDevices(ctx.stateDir);
  if (devices.size === 0) ctx.logger.warn('no devices pinned: every event will be rejected (see add-device)');
  const watcher = new EventWatcher(devices, ctx.logger.child({ module: 'watcher' }));
  const connection = new MqttConnection({
    url: ctx.broker,
    clientId: session?.clientId ?? `doorbell-hub-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    persistentSessionS: session ? WATCH_SESSION_S : undefined,
    logger: ctx.logger.child({ module: 'mqtt' }),
    subscriptions: EventWatcher.subscriptions,
    tls: ctx.tls,
  });
  connection.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
  return { connection, watcher };
}

async function watch(ctx: Context): Promise<number> {
  // One persistent session per hub key: events that arrive while the watcher is away wait at the broker.
  const { key } = await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir));
  const { connection, watcher } = await connectWatcher(ctx, { clientId: `doorbell-hub-watch-${key.keyId}` });
  watcher.on('event', (e) => {
    process.stdout.write(`${ctx.json ? JSON.stringify(eventToJson(e)) : describeEvent(e)}\n`);
  });
  watcher.on('rejected', (r) => {
    if (ctx.json) process.stdout.write(`${JSON.stringify({ rejected: r })}\n`);
  });
  connection.start();
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  await connection.stop();
  return 0;
}

async function sendCommand(
  ctx: Context,
  deviceId: string,
  body: { ringChimeTest?: object; getStatus?: object },
) {
  validateDeviceId(deviceId);
  const devices = await loadDevices(ctx.stateDir);
  if (!devices.has(deviceId)) throw new UsageError(`device '${deviceId}' is not pinned (see add-device)`);
  const { key } = await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir));
  const counters = await CounterStore.open(hubCounterPath(ctx.stateDir));
  const { connection, watcher } = await connectWatcher(ctx);
  const commander = new Commander({ connection, watcher, key, counters, logger: ctx.logger });
  connection.start();
  try {
    const connected = once(connection, 'connected');
    const timeout = new Promise((_, reject) =>
      setTimeout(
        () => reject(new CommandTimeoutError(`cannot reach the broker at ${ctx.broker}`)),
        ctx.timeoutMs,
      ).unref(),
    );
    await Promise.race([connected, timeout]);
    const { result } = await commander.send(deviceId, body, ctx.timeoutMs);
    const printable = doorbell.v1.CommandResult.toObject(result, { enums: String, defaults: false });
    process.stdout.write(`${JSON.stringify({ device: deviceId, ...printable })}\n`);
    return result.ok ? 0 : 1;
  } finally {
    await connection.stop();
    await counters.flush();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`doorbell-hub: ${err instanceof Error ? err.message : String(err)}\n`);
    if (usage) process.stderr.write(`\n${USAGE}\n`);
    process.exit(usage ? 2 : err instanceof HubStateError || err instanceof CommandTimeoutError ? 1 : 1);
  },
);
