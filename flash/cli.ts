#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import {
  boardPaths,
  DEFAULT_INSTALL_PATH,
  parseHardware,
  parseReleaseKeys,
  readBoardHardware,
  writeBoardFiles,
} from '../board/board-files.js';
import { isBundleError, keyMap, openFileSource, verifyBundle } from '../board/manifest.js';
import {
  type BoardTrust,
  commit,
  inactiveSlot,
  installToInactiveSlot,
  readBootState,
  SlotError,
  type SlotName,
  switchToTrial,
} from '../board/slots.js';
import { CliUsageError, parseCli, unknownWord, versionLine, wantsVersion } from '../common/cli-args.js';
import {
  loadOrCreateSigningKey,
  loadSigningKey,
  publicKeyFromText,
  publicKeyToText,
  type VerifyKey,
} from '../proto/keys.js';
import { EXIT, exitCodeOf } from './exit-codes.js';
import { devKeyPath } from './release.js';

const USAGE = `usage: doorbell-flash <command> [options]

commands:
  keygen --out PATH           create a release key (Ed25519, PKCS#8 PEM, mode 0600); keep it off the repository
  verify --bundle FILE        verify a bundle completely and print its manifest
  flash --bundle FILE --target DIR|ssh://user@host[:port][/path]
                              verify, then write the bundle to a board root with A/B slots

trust (verify, flash):
  --release-pubkey KEY        a trusted release key (ed25519:...), repeatable
  --release-pubkey-file FILE  trusted release keys, one a line
  --dev                       also trust this machine's development key and accept development builds
  --allow-development         accept development builds (trusting only the keys given; ssh:// passes it on for --dev)
  --hardware STR              the board's hardware string (flash: else <target>/etc/doorbell/hardware)

flash:
  --install-path PATH         where the target directory is on the board (default ${DEFAULT_INSTALL_PATH};
                              for a directory target that is a live root, pass the directory itself)
  --node PATH                 node on the board (default /usr/bin/node)
  --ssh-config FILE           ssh:// only: run ssh -F FILE (identity, known hosts, port, ...) instead of ~/.ssh/config

  -h, --help                  this help;  -V, --version  print the version

exit codes: 0 ok, 2 usage, 10 bad or unknown signature, 11 wrong hardware, 12 expired,
  13 downgrade, 14 damaged bundle, 15 development build refused, 20 not enough space, 21 target error`;

class UsageError extends CliUsageError {
  constructor(message: string) {
    super('doorbell-flash', message);
  }
}

const COMMANDS = ['keygen', 'verify', 'flash'] as const;

const OPTIONS = {
  out: { type: 'string' },
  bundle: { type: 'string' },
  target: { type: 'string' },
  hardware: { type: 'string' },
  'release-pubkey': { type: 'string', multiple: true },
  'release-pubkey-file': { type: 'string' },
  dev: { type: 'boolean' },
  'allow-development': { type: 'boolean' },
  'install-path': { type: 'string' },
  node: { type: 'string' },
  'ssh-config': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
type Values = ReturnType<typeof parseCli<typeof OPTIONS>>['values'];

/** Progress on stderr: a bar redrawn in place on a terminal, a line per quarter otherwise. */
function progress(): (phase: string, done: number, total: number) => void {
  const tty = process.stderr.isTTY === true;
  let lastPhase = '';
  let lastMark = -1;
  return (phase, done, total) => {
    const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
    if (tty) {
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      process.stderr.write(
        `\r${phase.padEnd(7)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${(done / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB`,
      );
      if (done >= total) process.stderr.write('\n');
      return;
    }
    const mark = Math.floor(pct / 25);
    if (phase !== lastPhase || mark !== lastMark) {
      lastPhase = phase;
      lastMark = mark;
      process.stderr.write(`${phase} ${pct}%\n`);
    }
  };
}

async function trustFrom(values: Values, hardware: string): Promise<BoardTrust & { texts: string[] }> {
  const keys: VerifyKey[] = [];
  for (const text of values['release-pubkey'] ?? []) {
    try {
      keys.push(publicKeyFromText(text));
    } catch (err) {
      throw new UsageError(`--release-pubkey: ${(err as Error).message}`);
    }
  }
  if (values['release-pubkey-file']) {
    const src = await openFileSource(values['release-pubkey-file']);
    try {
      if (src.size > 64 * 1024) throw new UsageError('--release-pubkey-file is too big');
      const text = (await src.read(0, src.size)).toString('utf8');
      keys.push(...parseReleaseKeys(text, values['release-pubkey-file']));
    } finally {
      await src.close();
    }
  }
  if (values.dev) {
    const path = devKeyPath();
    try {
      keys.push(await loadSigningKey(path));
    } catch (err) {
      throw new UsageError(`--dev: cannot load the development key ${path}: ${(err as Error).message}`);
    }
  }
  if (keys.length === 0)
    throw new UsageError('no trusted key: pass --release-pubkey, --release-pubkey-file or --dev');
  const map = keyMap(keys);
  return {
    keys: map,
    hardware,
    allowDevelopment: values.dev === true || values['allow-development'] === true,
    texts: [...map.values()].map((k) => publicKeyToText(k)),
  };
}

async function keygen(values: Values): Promise<number> {
  if (!values.out) throw new UsageError('keygen needs --out PATH');
  const path = resolve(values.out);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const { key, created } = await loadOrCreateSigningKey(path);
  if (!created) {
    process.stderr.write(`doorbell-flash: ${path} exists; not overwritten\n`);
    return EXIT.failure;
  }
  process.stdout.write(
    `release key ${key.keyId} written to ${path} (mode 0600)\npublic key: ${publicKeyToText(key)}\n`,
  );
  return EXIT.ok;
}

async function verifyCommand(values: Values): Promise<number> {
  if (!values.bundle) throw new UsageError('verify needs --bundle FILE');
  const src = await openFileSource(values.bundle);
  try {
    // Without --hardware, the bundle's own string is reported rather than checked.
    const peekTrust = await trustFrom(values, values.hardware ?? '');
    const hardware = values.hardware ?? (await peekHardware(src));
    const signed = await verifyBundle(
      src,
      { ...peekTrust, hardware, nowMs: Date.now(), minSecurityCounter: 0 },
      (d, t) => report('verify', d, t),
    );
    const m = signed.manifest;
    process.stdout.write(
      `ok: ${m.hardware} ${m.version}, security counter ${m.securityCounter}${m.development ? ', development build' : ''}\n` +
        `signed by ${signed.keyId}, expires ${new Date(m.expiresAtMs).toISOString()}, ${m.files.length} files\n`,
    );
    return EXIT.ok;
  } finally {
    await src.close();
  }
}

/** The hardware string a bundle claims (unverified; only used to report it). */
async function peekHardware(src: Awaited<ReturnType<typeof openFileSource>>): Promise<string> {
  try {
    const len = (await src.read(12, 4)).readUInt32BE(0);
    const text = (await src.read(88, Math.min(len, 1024 * 1024))).toString('utf8');
    const hw = (JSON.parse(text) as { hardware?: unknown }).hardware;
    return typeof hw === 'string' ? hw : '';
  } catch {
    return '';
  }
}

const report = progress();

async function flashCommand(values: Values): Promise<number> {
  if (!values.bundle || !values.target)
    throw new UsageError('flash needs --bundle FILE and --target DIR|ssh://...');
  if (values.target.startsWith('ssh://')) return flashOverSsh(values);
  if (values['ssh-config']) throw new UsageError('--ssh-config needs an ssh:// target');
  const root = resolve(values.target);
  const fromTarget = await readBoardHardware(root).catch((err: unknown) => {
    throw new SlotError('slot-invalid', (err as Error).message);
  });
  const fromFlag = values.hardware === undefined ? undefined : parseHardware(values.hardware, '--hardware');
  if (fromFlag && fromTarget && fromFlag !== fromTarget) {
    process.stderr.write(
      `doorbell-flash: --hardware ${fromFlag} but ${boardPaths(root).hardware} says ${fromTarget}; nothing was written\n`,
    );
    return EXIT.hardware;
  }
  const hardware = fromFlag ?? fromTarget;
  if (!hardware) {
    throw new UsageError(
      `the target's hardware is unknown: pass --hardware or create ${boardPaths(root).hardware}`,
    );
  }
  const trust = await trustFrom(values, hardware);
  const before = await readBootState(root);
  const where: FlashInFlight = {
    root,
    phase: 'verify',
    committed: before.committed,
    slot: inactiveSlot(before),
  };
  flashInFlight = where;
  const options = {
    trust,
    onProgress: (phase: string, done: number, total: number) => {
      if (phase === 'write') where.phase = 'write';
      report(phase, done, total);
    },
  };
  const installed = await installToInactiveSlot(root, values.bundle, options);
  where.slot = installed.slot;
  where.phase = 'switch';
  await switchToTrial(root, installed.slot, options);
  // Flashing is a deliberate act with the board in hand: the new slot is committed at once.
  await commit(root, options);
  where.phase = 'board';
  await writeBoardFiles(root, {
    hardware,
    releaseKeys: trust.texts,
    installPath: values['install-path'] ?? DEFAULT_INSTALL_PATH,
    nodePath: values.node ?? '/usr/bin/node',
    slot: installed.slot,
    development: trust.allowDevelopment,
  });
  flashInFlight = undefined;
  const m = installed.manifest;
  process.stdout.write(
    `flashed ${m.hardware} ${m.version} (security counter ${m.securityCounter}) into slot ${installed.slot} of ${root}\n` +
      `unit: ${boardPaths(root).unit} (on the board: systemctl link it, then enable --now doorbell)\n`,
  );
  return EXIT.ok;
}

/**
 * ssh://user@host[:port][/path]: verifies locally, then streams the bundle to
 * a temporary file on the board and runs `doorbell-flash flash` there, which
 * verifies again against the board. Needs `ssh` here and doorbell-flash on the board.
 */
async function flashOverSsh(values: Values): Promise<number> {
  const url = new URL(values.target ?? '');
  const path = url.pathname && url.pathname !== '/' ? url.pathname : DEFAULT_INSTALL_PATH;
  if (!values.hardware) throw new UsageError('an ssh:// target needs --hardware');
  const hardware = parseHardware(values.hardware, '--hardware');
  const trust = await trustFrom(values, hardware);
  const src = await openFileSource(values.bundle ?? '');
  try {
    await verifyBundle(src, { ...trust, nowMs: Date.now(), minSecurityCounter: 0 }, (d, t) =>
      report('verify', d, t),
    );
  } finally {
    await src.close();
  }
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
  const remote = [
    'doorbell-flash flash --bundle "$t"',
    `--target ${quote(path)} --install-path ${quote(path)} --hardware ${quote(hardware)}`,
    ...trust.texts.map((k) => `--release-pubkey ${quote(k)}`),
    values.node ? `--node ${quote(values.node)}` : '',
    // The board has no development key of its own: --dev's key is among the keys above.
    trust.allowDevelopment ? '--allow-development' : '',
  ].join(' ');
  const script = `set -u; t=$(mktemp) || exit 21; cat > "$t"; ${remote}; rc=$?; rm -f "$t"; exit $rc`;
  const destination = `${url.username ? `${url.username}@` : ''}${url.hostname}`;
  const args = [
    ...(values['ssh-config'] ? ['-F', values['ssh-config']] : []),
    ...(url.port ? ['-p', url.port] : []),
    '--', // a host or user starting with '-' is not an option
    destination,
    script,
  ];
  return new Promise((resolveExit) => {
    const child = spawn('ssh', args, { stdio: ['pipe', 'inherit', 'inherit'] });
    child.on('error', (err) => {
      process.stderr.write(`doorbell-flash: cannot run ssh: ${err.message}\n`);
      resolveExit(EXIT.target);
    });
    child.on('exit', (code, signal) => {
      // 255 is ssh's own failure (unreachable, refused, authentication); other codes are the board's.
      if (code === 255 || code === null) {
        process.stderr.write(`doorbell-flash: ssh to ${destination} failed (${signal ?? `exit ${code}`})\n`);
        resolveExit(EXIT.target);
      } else resolveExit(code);
    });
    const stdin = child.stdin;
    if (stdin) {
      // ssh that fails before it reads everything closes the pipe: its exit status tells why.
      stdin.on('error', () => {});
      const bundle = createReadStream(values.bundle ?? '');
      bundle.on('error', (err) => {
        process.stderr.write(`doorbell-flash: cannot read the bundle: ${err.message}\n`);
        child.kill();
      });
      bundle.pipe(stdin);
    }
  });
}

/** Where a flash into a directory is, for the message when it is interrupted. */
interface FlashInFlight {
  root: string;
  phase: 'verify' | 'write' | 'switch' | 'board';
  /** The slot being written (the inactive one). */
  slot: SlotName;
  /** The slot the board booted before this flash, if any. */
  committed: SlotName | null;
}

let flashInFlight: FlashInFlight | undefined;

/**
 * What an interrupted flash left on the target. Every step writes aside and
 * renames, so the target is always in one of these states, and running the
 * same command again finishes the flash from any of them.
 */
function interruptedFlashMessage(f: FlashInFlight): string {
  const again = 'Run the same command again to finish the flash.';
  const before =
    f.committed === null
      ? 'there was no bootable slot on it before, and there is none yet'
      : `the board still boots slot ${f.committed}, as before`;
  switch (f.phase) {
    case 'verify':
      return `interrupted while verifying the bundle: nothing was written to ${f.root}.`;
    case 'write':
      return `interrupted while writing slot ${f.slot} of ${f.root}: ${before}; the half-written slot is set aside and rewritten. ${again}`;
    case 'switch':
      return `interrupted while switching ${f.root} to slot ${f.slot}: it boots either slot ${f.slot} (complete and verified) or ${f.committed === null ? 'nothing' : `slot ${f.committed}`}. ${again}`;
    case 'board':
      return `interrupted after slot ${f.slot} of ${f.root} was committed, while writing the board files (systemd unit, release keys, hardware): they may be incomplete. ${again}`;
  }
}

async function main(argv: string[]): Promise<number> {
  if (wantsVersion(argv)) {
    process.stdout.write(versionLine('doorbell-flash'));
    return EXIT.ok;
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseCli('doorbell-flash', argv, OPTIONS));
  } catch (err) {
    if (!(err instanceof CliUsageError)) throw err;
    process.stderr.write(err.line());
    return EXIT.usage;
  }
  const command = positionals[0];
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  try {
    switch (command) {
      case 'keygen':
        return await keygen(values);
      case 'verify':
        return await verifyCommand(values);
      case 'flash':
        return await flashCommand(values);
      default:
        throw command === undefined
          ? new UsageError(`no command: one of ${COMMANDS.join(', ')}`)
          : unknownWord('doorbell-flash', 'command', command, COMMANDS);
    }
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(err.line());
      return EXIT.usage;
    }
    if (isBundleError(err)) {
      process.stderr.write(`doorbell-flash: bundle refused, nothing was written: ${err.message}\n`);
      return exitCodeOf(err.kind);
    }
    if (err instanceof SlotError) {
      process.stderr.write(`doorbell-flash: ${err.message}\n`);
      return err.kind === 'no-space' ? EXIT.space : EXIT.target;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') {
      process.stderr.write(`doorbell-flash: the target is full: ${(err as Error).message}\n`);
      return EXIT.space;
    }
    process.stderr.write(`doorbell-flash: ${err instanceof Error ? err.message : String(err)}\n`);
    return code ? EXIT.target : EXIT.failure;
  }
}

// Ctrl-C (or a stop) while flashing a directory: say what state the target is in.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  process.on(signal, () => {
    if (flashInFlight !== undefined)
      process.stderr.write(`\ndoorbell-flash: ${interruptedFlashMessage(flashInFlight)}\n`);
    process.exit(code);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`doorbell-flash: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
