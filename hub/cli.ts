#!/usr/bin/env node
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { lowerBackgroundThreads } from '../common/background-threads.js';
import { type BrokerProblem, describeBrokerProblem } from '../common/broker-errors.js';
import { CliUsageError, parseCli, unknownWord, versionLine, wantsVersion } from '../common/cli-args.js';
import {
  createLogger,
  type LogFormat,
  type Logger,
  type LogLevel,
  parseLogFormat,
} from '../common/logger.js';
import { MqttConnection, type TlsFiles } from '../common/mqtt-connection.js';
import {
  ageRecipientProblem,
  CounterStore,
  doorbell,
  loadOrCreateSigningKey,
  loadSigningKey,
  type PairingCode,
  parsePairingCode,
  publicKeyFromText,
  publicKeyToText,
  recipientForDisplay,
  topicsFor,
  validateDeviceId,
} from '../proto/index.js';
import { type CommandKind, isRole, ROLE_NAMES, roleName } from '../proto/roles.js';
import { waitForBroker } from './broker-wait.js';
import { hubClientId } from './client-id.js';
import type { CommandBody } from './commander.js';
import { EventWatcher } from './event-watcher.js';
import { describeEvent, eventToJson } from './format.js';
import { hubConfigPath, loadHubConfig, resolveHubSettings, writeHubConfig } from './hub-config.js';
import {
  addDevice,
  defaultHubStateDir,
  deviceHubRole,
  hubKeyPath,
  loadDeviceEntries,
  loadDevices,
  ownerCounterPath,
  ownerKeyPath,
  setDeviceHubRole,
} from './hub-state.js';
import { OtaUsageError, otaPush, otaStatus } from './ota.js';
import { PairingRefusedError, pairDevice } from './pairing.js';
import { openCommandSession } from './session.js';
import { chooseSigner, parseSigner, roleRefusalHint, type Signer, SignerChoiceError } from './signer.js';
import { devicesTable, keysTable, resultToJson, statusLines } from './tables.js';

const USAGE = `usage: doorbell-hub <command> [options]

commands:
  init --broker URL [--ca F --cert F --key F] [--force]
                                  save the broker settings to the hub's settings file (pair saves
                                  them too, the first time), so that no command needs them
  keygen                          create this hub's signing key (once) and print its public key
  add-device <device-id> <key>    pin a doorbell's public key (from \`doorbell identity\`)
  devices                         list pinned doorbells
  watch                           print verified events as they arrive
  ring <device-id>                ring the chime as a test; prints the signed result
  status <device-id>              ask a doorbell for its status

  pair --code CODE                pair a doorbell whose pairing window is open (hold its button 5 s);
                                  CODE is the pairing code from \`doorbell identity\`. Enrols this
                                  hub's owner key (Administer), the hub key (--hub-role) and the
                                  footage recipients (--recipient), and pins the doorbell's key
  keys <device-id>                list the enrolled keys and footage recipients
  keys add <device-id> <ed25519:...> --role ROLE [--label TEXT]
  keys remove <device-id> <key-id>
  keys rotate <device-id> <key-id> <ed25519:...>
  keys role <device-id> <key-id> <role>
  recipients <device-id> --recipient age1... [--recipient ...]   replace the footage recipients
  open-pairing <device-id> [--seconds N]   open the pairing window on a paired doorbell
  mute <device-id> on|off         mute or unmute the chime (presses are still events)
  ota push BUNDLE <device-id>     update the firmware over MQTT (owner key, Administer): resumable
                                  chunked transfer, then waits for the device to restart and
                                  report committed (exit 0) or rolled-back/refused (exit 1)
  ota status <device-id>          the running and committed firmware and any staged transfer

roles: view < operate < manage < administer. Each command is signed with the hub key when its
role (operate unless --hub-role said otherwise at pairing) is enough, else with the owner key;
--as owner|hub overrides.

options:
  --broker URL       MQTT broker (mqtts:// for TLS). The broker, --ca, --cert and --key come from
                     these flags, else DOORBELL_HUB_BROKER/_CA/_CERT/_KEY, else the settings file
                     ($XDG_CONFIG_HOME/open-doorbell/hub.json, or DOORBELL_HUB_CONFIG), else
                     mqtt://127.0.0.1:1883
  --ca FILE          TLS: the CA certificate that signed the broker's certificate
  --cert FILE        TLS: this hub's client certificate
  --key FILE         TLS: this hub's client key
  --state-dir DIR    hub keys and pinned devices (default ${defaultHubStateDir()})
  --json             one JSON object per line (watch: per event); keys, status and devices
                     print tables without it
  --timeout-ms N     ring/status: how long to wait for the result (default 5000);
                     ota push: how long to wait for the commit after the apply (default 120000)
  --replace          add-device: replace an already pinned key
  --force            init: replace an existing settings file
  --code CODE        pair: the pairing code
  --hub-role ROLE    pair: the hub key's role (default operate); --no-hub to enrol no hub key
  --recipient AGE    pair, recipients: an owner's age public key (age1...); repeatable
  --label TEXT       pair: the owner's label; keys add: the key's label
  --role ROLE        keys add: the new key's role
  --seconds N        open-pairing: how long (30-600, default 180)
  --as owner|hub     sign with the owner key or the hub key
  --log-format F     pretty, json or auto (default: pretty on a terminal); also DOORBELL_LOG_FORMAT.
                     Commands log only warnings and errors (watch: also connections);
                     DOORBELL_LOG_LEVEL=info shows more
  -h, --help         this help
  -V, --version      print the version`;

const OPTIONS = {
  broker: { type: 'string' },
  force: { type: 'boolean', default: false },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  'state-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  'timeout-ms': { type: 'string' },
  replace: { type: 'boolean', default: false },
  code: { type: 'string' },
  'hub-role': { type: 'string', default: 'operate' },
  'no-hub': { type: 'boolean', default: false },
  recipient: { type: 'string', multiple: true, default: [] as string[] },
  label: { type: 'string' },
  role: { type: 'string' },
  seconds: { type: 'string', default: '180' },
  as: { type: 'string' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends CliUsageError {
  constructor(message: string) {
    super('doorbell-hub', message);
  }
}

const COMMANDS = [
  'init',
  'keygen',
  'add-device',
  'devices',
  'watch',
  'ring',
  'status',
  'pair',
  'keys',
  'recipients',
  'open-pairing',
  'mute',
  'ota',
] as const;

interface Context {
  stateDir: string;
  /** The hub's settings file, and whether it existed when the command started. */
  configPath: string;
  hasConfigFile: boolean;
  broker: string;
  tls: TlsFiles;
  json: boolean;
  timeoutMs: number;
  logger: Logger;
}

async function main(argv: string[]): Promise<number> {
  if (wantsVersion(argv)) {
    process.stdout.write(versionLine('doorbell-hub'));
    return 0;
  }
  const { values, positionals } = parseCli('doorbell-hub', argv, OPTIONS);
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw unknownWord('doorbell-hub', 'command', command, COMMANDS);
  }
  const timeoutText = values['timeout-ms'] ?? (command === 'ota' ? '120000' : '5000');
  const timeoutMs = Number(timeoutText);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new UsageError(`--timeout-ms must be an integer from 1 to 600000, got '${timeoutText}'`);
  }
  if (values.broker !== undefined && !/^mqtts?:\/\/[^\s/]+(:\d+)?\/?$/.test(values.broker)) {
    throw new UsageError(`--broker must look like mqtt://host:port, got '${values.broker}'`);
  }
  // Broker settings: flags, then DOORBELL_HUB_* in the environment, then the settings file.
  const configPath = hubConfigPath();
  const saved = await loadHubConfig(configPath);
  const flags = { broker: values.broker, ca: values.ca, cert: values.cert, key: values.key };
  const settings = resolveHubSettings(flags, process.env, saved);
  if ((settings.cert === undefined) !== (settings.key === undefined)) {
    throw new UsageError('--cert and --key go together');
  }
  if (command === 'init') {
    need0(args, 'init');
    if (values.broker === undefined)
      throw new UsageError('init needs --broker (and --ca, --cert, --key for TLS)');
    await writeHubConfig(configPath, settings, values.force);
    process.stdout.write(
      `wrote ${configPath}: broker ${settings.broker}${settings.ca ? ' (TLS)' : ''}; commands use it without --broker\n`,
    );
    return 0;
  }
  const ctx: Context = {
    stateDir: values['state-dir'] ?? defaultHubStateDir(),
    broker: settings.broker,
    tls: { ca: settings.ca, cert: settings.cert, key: settings.key },
    configPath,
    hasConfigFile: saved !== undefined,
    json: values.json,
    timeoutMs,
    // One-shot commands print their result and nothing ahead of it; watch also says when it connects.
    logger: createLogger({
      name: 'doorbell-hub',
      level:
        (process.env.DOORBELL_LOG_LEVEL as LogLevel | undefined) ??
        (command === 'watch' && !values.json ? 'info' : 'warn'),
      format: logFormat(values['log-format']),
    }),
  };
  // Footage recipients are checked before anything is signed, published or created:
  // a secret key pasted here must never leave this machine.
  for (const r of values.recipient) {
    const problem = ageRecipientProblem(r);
    if (problem !== undefined) {
      throw new UsageError(`--recipient ${recipientForDisplay(r)}: ${problem}; nothing was sent`);
    }
  }
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
    case 'devices': {
      need(0);
      const entries = await loadDeviceEntries(ctx.stateDir);
      process.stdout.write(
        ctx.json
          ? `${JSON.stringify({ devices: entries })}\n`
          : devicesTable(new Map(Object.entries(entries))),
      );
      return 0;
    }
    case 'watch':
      need(0);
      return watch(ctx);
    case 'ring':
      return sendCommand(ctx, need(1)[0] ?? '', { ringChimeTest: {} }, values.as);
    case 'status':
      return sendCommand(ctx, need(1)[0] ?? '', { getStatus: {} }, values.as, (r) =>
        r.status ? statusLines(r.status) : undefined,
      );
    case 'pair': {
      need(0);
      if (values.code === undefined) throw new UsageError('pair needs --code (from `doorbell identity`)');
      let code: PairingCode;
      try {
        code = parsePairingCode(values.code);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      return pair(ctx, code, {
        hubRole: values['no-hub'] ? undefined : parseRole(values['hub-role'], '--hub-role'),
        recipients: values.recipient,
        ownerLabel: values.label ?? 'owner',
      });
    }
    case 'keys':
      return keysCommand(ctx, args, values);
    case 'recipients': {
      const [id = ''] = need(1);
      if (values.recipient.length === 0)
        throw new UsageError('recipients needs at least one --recipient age1...');
      return sendCommand(ctx, id, { setRecipients: { footageRecipients: values.recipient } }, values.as);
    }
    case 'open-pairing': {
      const [id = ''] = need(1);
      const seconds = Number(values.seconds);
      if (!Number.isInteger(seconds) || seconds < 30 || seconds > 600) {
        throw new UsageError(`--seconds must be an integer from 30 to 600, got '${values.seconds}'`);
      }
      return sendCommand(ctx, id, { openPairingWindow: { seconds } }, values.as);
    }
    case 'mute': {
      const [id = '', state = ''] = need(2);
      if (state !== 'on' && state !== 'off') throw new UsageError(`mute takes on or off, got '${state}'`);
      return sendCommand(ctx, id, { setChimeMuted: { muted: state === 'on' } }, values.as);
    }
    case 'ota': {
      const [sub = '', ...rest] = args;
      const otaCtx = { ...ctx, as: signerFlag(values.as) ?? 'owner' };
      try {
        if (sub === 'push' && rest.length === 2) return await otaPush(otaCtx, rest[0] ?? '', rest[1] ?? '');
        if (sub === 'status' && rest.length === 1) return await otaStatus(otaCtx, rest[0] ?? '');
      } catch (err) {
        if (err instanceof OtaUsageError) throw new UsageError(err.message);
        throw err;
      }
      throw new UsageError('usage: doorbell-hub ota push BUNDLE <device-id> | ota status <device-id>');
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

async function keygen(ctx: Context): Promise<number> {
  const { key, created } = await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir));
  process.stdout.write(
    `${created ? 'created' : 'existing'} hub key ${key.keyId} in ${hubKeyPath(ctx.stateDir)}\n` +
      `public key: ${publicKeyToText(key)}\n` +
      '`pair` enrols it on a doorbell (with the role --hub-role gives, operate by default); a doorbell\n' +
      'paired already takes it with `keys add <device-id> <this key> --role operate`\n',
  );
  return 0;
}

/** How long the broker keeps a watching hub's session (and its queued events) while it is away. */
const WATCH_SESSION_S = 7 * 24 * 3600;

async function connectWatcher(
  ctx: Context,
  session?: { purpose: string },
): Promise<{ connection: MqttConnection; watcher: EventWatcher }> {
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
  return { connection, watcher };
}

async function watch(ctx: Context): Promise<number> {
  // One persistent session per hub key: events that arrive while the watcher is away wait at the broker.
  const { key } = await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir));
  const { connection, watcher } = await connectWatcher(ctx, { purpose: `watch-${key.keyId}` });
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

/**
 * Shown when the first doorbell is paired with the owner key: it is the only key that can
 * manage the doorbell's keys, and a lost one means a factory reset.
 */
function ownerKeyNotice(path: string): string {
  const rule = '='.repeat(78);
  return (
    `\n${rule}\n` +
    '  BACK UP THE OWNER KEY NOW\n\n' +
    `  ${path}\n\n` +
    '  This new key is the only one that can add or remove keys, change roles and\n' +
    '  footage recipients, open the pairing window and update the firmware of the\n' +
    '  doorbells paired with it. Without it, the only way back is a factory reset\n' +
    '  of each doorbell. Copy it somewhere offline (an encrypted USB stick, a\n' +
    '  password manager); anyone holding it controls your doorbells.\n' +
    `${rule}\n\n`
  );
}

function need0(args: string[], command: string): void {
  if (args.length !== 0) throw new UsageError(`'${command}' takes no arguments, got ${args.length}`);
}

/** What to do after a refused pairing, by the refusal's kind. */
function pairingNextStep(errorKind: string): string | undefined {
  if (errorKind === 'PAIRING_WINDOW_CLOSED')
    return (
      'on a new doorbell, hold its button for 5 s (the LED double-blinks), then run pair again within 3 minutes; ' +
      'a doorbell that has an owner opens its window only when that owner runs `open-pairing <device-id>`'
    );
  if (errorKind === 'PAIRING_PROOF_INVALID')
    return 'check the code: it must be the one `npm run doorbell -- identity` prints on this doorbell, copied whole';
  return undefined;
}

/** `--log-format`, as a usage error when it is not a format. */
function logFormat(text: string | undefined): LogFormat | undefined {
  if (text === undefined) return undefined;
  try {
    return parseLogFormat(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `--as owner|hub`, as a usage error when it is neither. */
function signerFlag(as: string | undefined): Signer | undefined {
  try {
    return parseSigner(as);
  } catch (err) {
    if (err instanceof SignerChoiceError) throw new UsageError(err.message);
    throw err;
  }
}

function parseRole(text: string | undefined, flag: string): doorbell.v1.Role {
  const index = ROLE_NAMES.indexOf(text as (typeof ROLE_NAMES)[number]);
  if (index < 0) throw new UsageError(`${flag} must be one of ${ROLE_NAMES.join(', ')}, got '${text ?? ''}'`);
  return (index + 1) as doorbell.v1.Role;
}

function parseKeyText(text: string): Uint8Array {
  try {
    return publicKeyFromText(text).publicRaw;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function keysCommand(
  ctx: Context,
  args: string[],
  values: { role?: string; label?: string; as?: string },
): Promise<number> {
  const [first = '', ...rest] = args;
  const want = (n: number, usage: string): string[] => {
    if (rest.length !== n) throw new UsageError(`usage: doorbell-hub ${usage}`);
    return rest;
  };
  const admin = values.as;
  switch (first) {
    case 'add': {
      const [id = '', key = ''] = want(2, 'keys add <device-id> <ed25519:...> --role ROLE');
      const role = parseRole(values.role, '--role');
      return sendCommand(
        ctx,
        id,
        { addKey: { publicKey: parseKeyText(key), role, label: values.label ?? '' } },
        admin,
      );
    }
    case 'remove': {
      const [id = '', keyId = ''] = want(2, 'keys remove <device-id> <key-id>');
      return sendCommand(ctx, id, { removeKey: { keyId } }, admin);
    }
    case 'rotate': {
      const [id = '', keyId = '', key = ''] = want(3, 'keys rotate <device-id> <key-id> <ed25519:...>');
      return sendCommand(ctx, id, { rotateKey: { keyId, newPublicKey: parseKeyText(key) } }, admin);
    }
    case 'role': {
      const [id = '', keyId = '', role = ''] = want(3, 'keys role <device-id> <key-id> <role>');
      return sendCommand(ctx, id, { setRole: { keyId, role: parseRole(role, 'role') } }, admin);
    }
    default:
      if (rest.length !== 0) throw new UsageError(`unknown keys subcommand '${first}'`);
      return sendCommand(ctx, first, { listKeys: {} }, values.as, (r) =>
        r.keys ? keysTable(r.keys) : undefined,
      );
  }
}

async function sendCommand(
  ctx: Context,
  deviceId: string,
  body: CommandBody,
  asFlag: string | undefined,
  /** A table for people (without --json), for a result that has what it shows. */
  render?: (result: doorbell.v1.ICommandResult) => string | undefined,
): Promise<number> {
  validateDeviceId(deviceId);
  const devices = await loadDevices(ctx.stateDir);
  if (!devices.has(deviceId)) throw new UsageError(`device '${deviceId}' is not paired or pinned (see pair)`);
  const kind = (Object.keys(body) as CommandKind[]).find((k) => body[k] != null);
  if (kind === undefined) throw new Error('an empty command');
  const hubKey = existsSync(hubKeyPath(ctx.stateDir))
    ? await loadSigningKey(hubKeyPath(ctx.stateDir))
    : undefined;
  const as = chooseSigner(kind, {
    as: signerFlag(asFlag),
    hubRole: await deviceHubRole(ctx.stateDir, deviceId),
    hasHubKey: hubKey !== undefined,
    hasOwnerKey: existsSync(ownerKeyPath(ctx.stateDir)),
  });
  const session = await openCommandSession({
    stateDir: ctx.stateDir,
    broker: ctx.broker,
    tls: ctx.tls,
    logger: ctx.logger,
    devices,
    as,
    connectTimeoutMs: ctx.timeoutMs,
    clientPurpose: '',
  });
  try {
    const result = await session.send(deviceId, body, ctx.timeoutMs);
    const table = ctx.json || !result.ok ? undefined : render?.(result);
    process.stdout.write(table ?? `${JSON.stringify(resultToJson(deviceId, result))}\n`);
    // A verified key list says what the hub key's role is now: remember it for the next choice.
    const hubEntry = hubKey && result.keys?.keys?.find((k) => k.keyId === hubKey.keyId);
    if (hubEntry && isRole(hubEntry.role))
      await setDeviceHubRole(ctx.stateDir, deviceId, roleName(hubEntry.role));
    if (
      !result.ok &&
      result.errorKind === doorbell.v1.ErrorKind.UNAUTHORISED &&
      / needs /.test(result.errorMessage ?? '')
    ) {
      process.stderr.write(`doorbell-hub: ${roleRefusalHint(kind, as)}\n`);
    }
    return result.ok ? 0 : 1;
  } finally {
    await session.close();
  }
}

async function waitConnected(ctx: Context, connection: MqttConnection): Promise<void> {
  await waitForBroker(connection, ctx.broker, ctx.timeoutMs);
}

async function pair(
  ctx: Context,
  code: PairingCode,
  options: { hubRole: doorbell.v1.Role | undefined; recipients: string[]; ownerLabel: string },
): Promise<number> {
  const { key: owner } = await loadOrCreateSigningKey(ownerKeyPath(ctx.stateDir));
  // The first doorbell paired is when the owner key starts to matter: say so then.
  const firstDoorbell = (await loadDevices(ctx.stateDir)).size === 0;
  const hub =
    options.hubRole === undefined ? undefined : (await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir))).key;
  const ownerCounters = await CounterStore.open(ownerCounterPath(ctx.stateDir));
  const connection = new MqttConnection({
    url: ctx.broker,
    clientId: hubClientId(ctx.tls, 'pair', 'unique'),
    logger: ctx.logger.child({ module: 'mqtt' }),
    subscriptions: [topicsFor(code.deviceId).evt],
    maximumPacketSize: EventWatcher.maxPacketBytes,
    tls: ctx.tls,
  });
  connection.start();
  try {
    await waitConnected(ctx, connection);
    const paired = await pairDevice(
      connection,
      {
        code,
        owner,
        ownerCounters,
        ownerLabel: options.ownerLabel,
        ...(hub && options.hubRole !== undefined
          ? { hub: { key: hub, role: options.hubRole, label: 'hub' } }
          : {}),
        recipients: options.recipients,
        timeoutMs: ctx.timeoutMs,
      },
      ctx.logger,
    );
    await addDevice(ctx.stateDir, code.deviceId, publicKeyToText(paired.deviceKey), true, paired.keyEpoch);
    if (firstDoorbell) process.stderr.write(ownerKeyNotice(ownerKeyPath(ctx.stateDir)));
    if (!ctx.hasConfigFile) {
      // The broker that just worked: later commands need no --broker.
      await writeHubConfig(ctx.configPath, { broker: ctx.broker, ...ctx.tls }, false);
      process.stderr.write(
        `saved the broker settings to ${ctx.configPath}; later commands need no --broker\n`,
      );
    }
    const hubEntry = hub && paired.keys.keys.find((k) => k.keyId === hub.keyId);
    if (hubEntry && isRole(hubEntry.role))
      await setDeviceHubRole(ctx.stateDir, code.deviceId, roleName(hubEntry.role));
    process.stdout.write(
      `paired ${code.deviceId}: its key ${paired.deviceKey.keyId} matches the pairing code and is pinned\n` +
        paired.keys.keys
          .map((k) => `  ${k.keyId}  ${ROLE_NAMES[(k.role ?? 1) - 1] ?? '?'}  ${k.label}\n`)
          .join('') +
        `footage recipients: ${paired.keys.footageRecipients.length}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof PairingRefusedError) {
      const next = pairingNextStep(err.errorKind);
      process.stderr.write(
        `doorbell-hub: the doorbell refused: ${err.message}\n${next ? `next: ${next}\n` : ''}`,
      );
      return 1;
    }
    throw err;
  } finally {
    await connection.stop();
    await ownerCounters.flush();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof CliUsageError) {
      process.stderr.write(err.line());
      process.exit(2);
    }
    process.stderr.write(`doorbell-hub: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
