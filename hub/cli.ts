#!/usr/bin/env node
import { CliUsageError, parseCli, unknownWord, versionLine, wantsVersion } from '../common/cli-args.js';
import { createLogger, type LogLevel } from '../common/logger.js';
import {
  ageRecipientProblem,
  type PairingCode,
  parsePairingCode,
  recipientForDisplay,
} from '../proto/index.js';
import { audit, auditConsistency, auditProof } from './commands/audit.js';
import { type Context, logFormat, need0, parseRole, signerFlag, UsageError } from './commands/context.js';
import { clipDelete, clipGet, clips } from './commands/footage.js';
import { keygen, keysCommand } from './commands/keys.js';
import { pair } from './commands/pair.js';
import { sendCommand } from './commands/send.js';
import { serve } from './commands/serve.js';
import { shareApprove, shareDeny, shareList, shareRequest, shareVerify } from './commands/share.js';
import { watch } from './commands/watch.js';
import { hubConfigPath, loadHubConfig, resolveHubSettings, writeHubConfig } from './hub-config.js';
import { addDevice, defaultHubStateDir, loadDeviceEntries } from './hub-state.js';
import { OtaUsageError, otaPush, otaStatus } from './ota.js';
import { devicesTable, statusLines } from './tables.js';

const USAGE = `usage: doorbell-hub <command> [options]

commands:
  init --broker URL [--ca F --cert F --key F] [--force]
                                  save the broker settings to the hub's settings file (pair saves
                                  them too, the first time), so that no command needs them
  keygen                          create this hub's signing key (once) and print its public key
  add-device <device-id> <key>    pin a doorbell's public key (from \`doorbell identity\`)
  devices                         list pinned doorbells
  watch                           print verified events as they arrive
  serve [--listen HOST:PORT]      the long-running hub: the doorbells' events through a persistent
                                  session, and HTTP (default 127.0.0.1:8580; GET /healthz); under
                                  systemd a Type=notify service with a watchdog (docs/hub-serve.md)
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
  audit <device-id> [--verify]    fetch the doorbell's audit log (keys, footage, updates) and check
                                  it against every signed checkpoint this hub has seen (watch keeps
                                  them): a rewritten or cut history is reported, exit 1
  share request <device-id> --name WHO --reason WHY --since T --until T --recipient age1...
        [--expires T]             file a footage request (logged by the doorbell; expires in 7 days)
  share list                      footage requests and their state (expired ones are logged so)
  share deny <request-id>         deny a request (owner key; logged by the doorbell)
  share approve <request-id> --clips ID[,ID...] --identity FILE [-o DIR] [--expires T]
                                  approve exactly these items (inside the request's window):
                                  each re-addressed to the requester on this machine, the
                                  approval signed by the owner key and logged by the doorbell,
                                  written with its proof as a share package
  share verify DIR                check a share package offline (for the requester)
  audit <device-id> --consistency  check by consistency proofs, fetching no entries, that the
                                  doorbell's log extends every checkpoint kept since the last
                                  check: a rewritten or cut history is reported, exit 1
  audit <device-id> --proof N [-o FILE]
                                  a C2SP tlog-proof that entry N is in the log (checked here),
                                  verifiable offline with the doorbell's key
  clips <device-id> [--identity FILE] [--since T] [--until T] [--kind clip|snapshot]
        [--reason press|motion]   list the stored clips and snapshots: id, size, SHA-256 and
                                  expiry; with the owner's identity also kind, trigger, times
                                  and recipients (sealed on the doorbell), and the filters
  clip get <item-id> --identity FILE [-o FILE] [--device D]
                                  fetch an item (resumable, its SHA-256 checked), keep its
                                  ciphertext in the hub's store and decrypt it here with the
                                  owner's age identity; --raw writes the .age file instead
  clip delete <item-id>... [--device D]
                                  delete items on the doorbell (Administer; logged there) and
                                  from the hub's store

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
  --since T, --until T   clips (with --identity): Unix ms or an ISO 8601 time
  --kind K, --reason R   clips (with --identity): only clips or snapshots; only one trigger;
                         share request: why
  --name WHO         share request: who asks for footage
  --expires T        share request: when an unanswered request expires (default in 7 days)
  --device D         clip get: the doorbell (default: the only one paired)
  --identity FILE    clip get, clips, share approve: an age identity file (age-keygen's) to
                     decrypt with
  -o, --output FILE  clip get: where to write (default <item-id>.mp4, .jpg for a snapshot);
                     audit --proof: where to write the proof (default stdout)
  --raw              clip get: write the ciphertext (.age), decrypt nothing
  --listen HOST:PORT serve: the HTTP address (also DOORBELL_HUB_LISTEN and the settings file's
                     "listen"; default 127.0.0.1:8580; port 0 takes any free one)
  --verify           audit: print only the verdict, not the entries
  --consistency      audit: check by consistency proofs instead of fetching the entries
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
  since: { type: 'string' },
  until: { type: 'string' },
  kind: { type: 'string' },
  reason: { type: 'string' },
  device: { type: 'string' },
  identity: { type: 'string' },
  output: { type: 'string', short: 'o' },
  raw: { type: 'boolean', default: false },
  verify: { type: 'boolean', default: false },
  consistency: { type: 'boolean', default: false },
  listen: { type: 'string' },
  proof: { type: 'string' },
  name: { type: 'string' },
  expires: { type: 'string' },
  clips: { type: 'string' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const COMMANDS = [
  'init',
  'keygen',
  'add-device',
  'devices',
  'watch',
  'serve',
  'ring',
  'status',
  'pair',
  'keys',
  'recipients',
  'open-pairing',
  'mute',
  'ota',
  'clips',
  'clip',
  'audit',
  'share',
] as const;

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
  const flags = {
    broker: values.broker,
    ca: values.ca,
    cert: values.cert,
    key: values.key,
    listen: values.listen,
  };
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
        ((command === 'watch' && !values.json) || command === 'serve' ? 'info' : 'warn'),
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
    case 'serve':
      need(0);
      return serve(ctx, settings.listen);
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
    case 'audit':
      if (values.proof !== undefined)
        return auditProof(ctx, need(1)[0] ?? '', Number(values.proof), values.output);
      if (values.consistency) {
        if (values.verify) throw new UsageError('--consistency and --verify are two ways to check: give one');
        return auditConsistency(ctx, need(1)[0] ?? '');
      }
      return audit(ctx, need(1)[0] ?? '', values.verify);
    case 'share': {
      const [sub = '', ...rest] = args;
      if (sub === 'request' && rest.length === 1) {
        return shareRequest(ctx, rest[0] ?? '', {
          name: values.name,
          reason: values.reason,
          since: values.since,
          until: values.until,
          recipient: values.recipient,
          expires: values.expires,
        });
      }
      if (sub === 'list' && rest.length === 0) return shareList(ctx);
      if (sub === 'deny' && rest.length === 1) return shareDeny(ctx, rest[0] ?? '');
      if (sub === 'approve' && rest.length === 1) {
        return shareApprove(ctx, rest[0] ?? '', {
          clips: values.clips,
          identity: values.identity,
          output: values.output,
          expires: values.expires,
        });
      }
      if (sub === 'verify' && rest.length === 1) return shareVerify(ctx, rest[0] ?? '');
      throw new UsageError(
        'usage: doorbell-hub share request <device-id> ... | share list | share deny <request-id>',
      );
    }
    case 'clips': {
      const [id = ''] = need(1);
      const filter = {
        since: values.since,
        until: values.until,
        kind: values.kind,
        reason: values.reason,
        identity: values.identity,
      };
      return clips(ctx, id, filter, values.as);
    }
    case 'clip': {
      const [sub = '', itemId = '', ...rest] = args;
      if (sub === 'delete') return clipDelete(ctx, args.slice(1), values.device, values.as);
      if (sub !== 'get' || itemId === '' || rest.length > 0)
        throw new UsageError(
          'usage: doorbell-hub clip get <item-id> --identity FILE [-o FILE] [--raw] | clip delete <item-id>...',
        );
      return clipGet(
        ctx,
        itemId,
        { device: values.device, output: values.output, identity: values.identity, raw: values.raw },
        values.as,
      );
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
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
