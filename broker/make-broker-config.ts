// Generates everything a locked-down home Mosquitto needs: a CA, a server
// certificate, one client certificate per doorbell and one for the hub, the
// CA's (empty) certificate revocation list, mosquitto.conf and the ACL, and
// builds (or locates) the doorbell_auth Mosquitto plugin that mosquitto.conf
// loads. Later, revokes a doorbell's certificate (a lost or discarded board).
//
//   node --import tsx broker/make-broker-config.ts --out DIR --device front-door [--device ...]
//   node --import tsx broker/make-broker-config.ts --out DIR --revoke front-door
import { execFile } from 'node:child_process';
import { access, chmod, chown, mkdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { CliUsageError, parseCli, versionLine, wantsVersion } from '../common/cli-args.js';
import { validateDeviceId } from '../proto/index.js';
import {
  createCa,
  initRevocation,
  issueLeaf,
  type KeyAndCert,
  type Revocation,
  revokeCertificate,
} from './certs.js';
import { writeMosquittoFiles } from './mosquitto-config.js';

export interface BrokerConfigOptions {
  outDir: string;
  deviceIds: string[];
  hubName?: string;
  port?: number;
  host?: string;
  serverNames?: string[];
  persistence?: boolean;
  force?: boolean;
  days?: number;
  /** Written as Mosquitto's `user` option; see ListenerSettings.runAs. */
  mosquittoUser?: string | undefined;
  /**
   * An already built doorbell_auth.so to load instead of building the one in
   * broker/plugin (see `ensureAuthPlugin`).
   */
  pluginPath?: string | undefined;
}

export interface BrokerConfigFiles {
  dir: string;
  conf: string;
  acl: string;
  ca: KeyAndCert;
  server: KeyAndCert;
  hub: KeyAndCert & { name: string };
  devices: Map<string, KeyAndCert>;
  /** The CA's certificate revocation list, Mosquitto's `crlfile`. */
  crl: string;
  /** The doorbell_auth plugin mosquitto.conf loads. */
  plugin: string;
  /**
   * How Mosquitto, dropping privileges to its user, reads server.key: `group` when
   * the key was given to that user's group (0640, made as root); otherwise the
   * command to run before starting Mosquitto as root.
   */
  serverKeyAccess: { group: string } | { step: string };
}

/** The plugin's source directory and the library `make -C PLUGIN_DIR` builds. */
export const PLUGIN_DIR = resolve(import.meta.dirname, 'plugin');
export const PLUGIN_SO = join(PLUGIN_DIR, 'build', 'doorbell_auth.so');

/**
 * Builds broker/plugin/build/doorbell_auth.so with `make` (a no-op when
 * it is newer than its source) and returns its absolute path. Needs a C
 * compiler, make and the Debian packages mosquitto-dev, libmosquitto-dev and
 * libssl-dev (scripts/setup installs them).
 */
export function ensureAuthPlugin(): Promise<string> {
  return new Promise((done, fail) => {
    execFile(
      'make',
      ['-s', '-C', PLUGIN_DIR],
      { encoding: 'utf8', timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err) {
          fail(
            new Error(
              `cannot build the Mosquitto plugin (make -C ${PLUGIN_DIR}): ${err.message}\n${stdout}${stderr}` +
                'it needs cc, make and the Debian packages mosquitto-dev, libmosquitto-dev and libssl-dev (scripts/setup installs them)',
            ),
          );
        } else {
          done(PLUGIN_SO);
        }
      },
    );
  });
}

const USAGE = `usage: make-broker-config --out DIR --device ID [--device ID ...] [options]
       make-broker-config --out DIR --revoke ID [--revoke ID ...]

  --out DIR            output directory (created if missing)
  --device ID          a doorbell's device id; its certificate's CN (repeatable)
  --hub NAME           the hub's certificate CN and ACL user (default: hub)
  --port N             TLS listener port (default: 8883)
  --host ADDR          address the listener binds to (default: 127.0.0.1)
  --server-name NAME   DNS name or IP in the broker certificate (repeatable;
                       default: localhost and 127.0.0.1)
  --days N             certificate validity in days (default: 825)
  --mosquitto-user U   the user Mosquitto drops to when started as root
                       (default: Mosquitto's own, \`mosquitto\`); it must be
                       able to read server.key and the ACL
  --plugin PATH        the doorbell_auth.so Mosquitto loads (default: build it
                       with \`make -C broker/plugin\` into
                       broker/plugin/build/ and use that); it refuses
                       client ids containing #, + or / and makes the
                       certificate's CN the username. Building needs cc, make,
                       mosquitto-dev, libmosquitto-dev and libssl-dev
  --persistence        keep Mosquitto's database (default: off)
  --force              overwrite an existing CA key
  --revoke ID          revoke the certificate DIR/device-ID.crt (a lost or
                       discarded doorbell) and write a new DIR/crl.pem signed
                       by the CA; then reload Mosquitto (SIGHUP, e.g.
                       systemctl reload mosquitto): new connections with that
                       certificate fail the TLS handshake and a connection
                       still open is closed. Needs DIR/ca.key (repeatable)
  --help               this text
  --version            print the version`;

export class UsageError extends CliUsageError {
  constructor(message: string) {
    super('make-broker-config', message);
  }
}

/** Creates the CA, certificates, mosquitto.conf and ACL under `outDir`. */
export async function makeBrokerConfig(options: BrokerConfigOptions): Promise<BrokerConfigFiles> {
  const dir = resolve(options.outDir);
  const hubName = options.hubName ?? 'hub';
  const days = options.days ?? 825;
  if (options.deviceIds.length === 0) throw new UsageError('at least one --device is required');
  const deviceIds = options.deviceIds.map((id) => validateDeviceId(id));
  try {
    validateDeviceId(hubName);
  } catch {
    throw new TypeError(`invalid hub name ${JSON.stringify(hubName)}: same rules as a device id`);
  }
  if (deviceIds.includes(hubName)) throw new TypeError(`hub name ${hubName} is also a device id`);
  if (new Set(deviceIds).size !== deviceIds.length) throw new TypeError('a device id is given twice');
  if (options.mosquittoUser !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(options.mosquittoUser)) {
    throw new TypeError(`invalid user name ${JSON.stringify(options.mosquittoUser)}`);
  }
  const port = options.port ?? 8883;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new TypeError(`invalid port ${port}`);

  const plugin = options.pluginPath === undefined ? await ensureAuthPlugin() : resolve(options.pluginPath);
  if (!(await exists(plugin))) throw new Error(`no Mosquitto plugin at ${plugin}`);

  await mkdir(dir, { recursive: true, mode: 0o755 });
  const caKey = join(dir, 'ca.key');
  if (!options.force && (await exists(caKey))) {
    throw new Error(`${caKey} exists: refusing to replace the CA (pass --force to do it anyway)`);
  }
  const ca = await createCa(dir, 'Open Doorbell home CA', days);
  const crl = await initRevocation(ca, dir);
  const server = await issueLeaf(
    ca,
    dir,
    {
      stem: 'server',
      commonName: 'mosquitto',
      usage: 'server',
      altNames: options.serverNames ?? ['localhost', '127.0.0.1'],
    },
    days,
  );
  const hub = await issueLeaf(
    ca,
    dir,
    { stem: `hub-${hubName}`, commonName: hubName, usage: 'client' },
    days,
  );
  const devices = new Map<string, KeyAndCert>();
  for (const id of deviceIds) {
    devices.set(
      id,
      await issueLeaf(ca, dir, { stem: `device-${id}`, commonName: id, usage: 'client' }, days),
    );
  }
  const conf = join(dir, 'mosquitto.conf');
  const acl = join(dir, 'acl');
  await writeMosquittoFiles(conf, {
    port,
    host: options.host ?? '127.0.0.1',
    cafile: ca.cert,
    certfile: server.cert,
    keyfile: server.key,
    crlFile: crl,
    aclFile: acl,
    hubName,
    pluginPath: plugin,
    persistence: options.persistence ?? false,
    persistenceLocation: dir,
    runAs: options.mosquittoUser,
  });
  const serverKeyAccess = await shareServerKey(server.key, options.mosquittoUser ?? 'mosquitto');
  return {
    dir,
    conf,
    acl,
    ca,
    server,
    hub: { ...hub, name: hubName },
    devices,
    crl,
    plugin,
    serverKeyAccess,
  };
}

/**
 * Mosquitto started as root reads its key only after it has dropped to its own
 * user: as root, give the key to that user's group, read-only (0640); the key
 * stays owned by root. Without root (or without such a user) say what to run.
 */
async function shareServerKey(keyPath: string, user: string): Promise<BrokerConfigFiles['serverKeyAccess']> {
  if (user === 'root') return { group: 'root' };
  const step = `chgrp ${user} ${keyPath} && chmod 0640 ${keyPath}`;
  if (process.getuid?.() !== 0) return { step };
  let gid: number;
  try {
    const { stdout } = await promisify(execFile)('id', ['-g', user]);
    gid = Number(stdout.trim());
  } catch {
    return { step: `${step}   # no user '${user}' here: use the user Mosquitto runs as (--mosquitto-user)` };
  }
  await chown(keyPath, 0, gid);
  await chmod(keyPath, 0o640);
  return { group: user };
}

/**
 * Revokes the certificate of doorbell `deviceId` issued by the CA in `outDir`
 * (`device-<id>.crt`) and writes a new CRL there, signed by the CA. Mosquitto
 * reads it when it starts and when it reloads (SIGHUP).
 */
export async function revokeDevice(outDir: string, deviceId: string): Promise<Revocation> {
  const dir = resolve(outDir);
  const id = validateDeviceId(deviceId);
  const ca = { key: join(dir, 'ca.key'), cert: join(dir, 'ca.crt') };
  if (!(await exists(ca.key)))
    throw new Error(`no CA key at ${ca.key}: revoking needs the CA that issued the certificate`);
  const cert = join(dir, `device-${id}.crt`);
  if (!(await exists(cert))) throw new Error(`no certificate for device ${id} at ${cert}`);
  return revokeCertificate(ca, dir, cert);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

type Parsed = BrokerConfigOptions | 'help' | { revoke: string[]; outDir: string };

function parse(argv: string[]): Parsed {
  const { values, positionals } = parseCli('make-broker-config', argv, {
    out: { type: 'string' },
    device: { type: 'string', multiple: true },
    hub: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    'server-name': { type: 'string', multiple: true },
    days: { type: 'string' },
    'mosquitto-user': { type: 'string' },
    plugin: { type: 'string' },
    persistence: { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
    revoke: { type: 'string', multiple: true },
    help: { type: 'boolean', default: false },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  if (!values.out) throw new UsageError('--out DIR is required');
  const outDir = isAbsolute(values.out) ? values.out : resolve(values.out);
  if (values.revoke) {
    if (values.device) throw new UsageError('--revoke and --device do not go together');
    return { revoke: values.revoke, outDir };
  }
  const int = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
    return Number(v);
  };
  return {
    outDir,
    deviceIds: values.device ?? [],
    hubName: values.hub,
    port: int('port', values.port),
    host: values.host,
    serverNames: values['server-name'],
    days: int('days', values.days),
    persistence: values.persistence,
    mosquittoUser: values['mosquitto-user'],
    pluginPath: values.plugin,
    force: values.force,
  };
}

/** The CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (wantsVersion(argv)) {
    process.stdout.write(versionLine('make-broker-config'));
    return 0;
  }
  let options: Parsed;
  try {
    options = parse(argv);
  } catch (err) {
    if (!(err instanceof CliUsageError)) throw err;
    process.stderr.write(err.line());
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if ('revoke' in options) return revokeCli(options.outDir, options.revoke);
  try {
    const files = await makeBrokerConfig(options);
    const lines = [
      `created in ${files.dir}:`,
      `  CA               ${files.ca.cert} (key ${files.ca.key}, keep it offline)`,
      `  broker           ${files.server.cert} (key ${files.server.key}${'group' in files.serverKeyAccess ? `, readable by group ${files.serverKeyAccess.group}` : ''})`,
      `  hub ${files.hub.name.padEnd(12)} ${files.hub.cert} (key ${files.hub.key})`,
      ...[...files.devices].map(([id, f]) => `  device ${id.padEnd(9)} ${f.cert} (key ${f.key})`),
      `  CRL              ${files.crl} (revoke a board: --out ${files.dir} --revoke ID)`,
      `  mosquitto config ${files.conf}`,
      `  ACL              ${files.acl}`,
      `  plugin           ${files.plugin}`,
      ...('step' in files.serverKeyAccess
        ? [`before starting Mosquitto as root, let its user read the key: ${files.serverKeyAccess.step}`]
        : []),
      `run: mosquitto -c ${files.conf}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(err.line());
      return 2;
    }
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return err instanceof UsageError || err instanceof TypeError ? 2 : 1;
  }
}

async function revokeCli(outDir: string, deviceIds: string[]): Promise<number> {
  try {
    let crl = '';
    for (const id of deviceIds) {
      const r = await revokeDevice(outDir, id);
      crl = r.crl;
      process.stdout.write(
        `${r.already ? 'already revoked' : 'revoked'}: device ${id}, certificate serial ${r.serial}\n`,
      );
    }
    process.stdout.write(
      `wrote ${crl}\n` +
        'reload Mosquitto to apply it: systemctl reload mosquitto (or kill -HUP <its pid>)\n',
    );
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return err instanceof TypeError ? 2 : 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
