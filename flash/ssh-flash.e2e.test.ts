import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadBoardTrust } from '../board/board-files.js';
import { buildBundle } from '../board/manifest.js';
import { readBootState, verifySlot } from '../board/slots.js';
import { freePort } from '../common/free-port.js';
import { loadOrCreateSigningKey, loadSigningKey, publicKeyToText } from '../proto/keys.js';
import { docCommand, runDocCommand, withValues } from '../test-support/doc-commands.js';
import { EXIT } from './exit-codes.js';
import { devKeyPath } from './release.js';
import { type Run, run, unpack } from './test-helpers.js';

// `doorbell-flash flash --target ssh://...` against a real OpenSSH server on loopback: the
// "board" is a temp directory on this machine, reached through sshd as the current user,
// where `doorbell-flash` is a wrapper around this repository's CLI.

const REPO = resolve(import.meta.dirname, '..');
const SSHD = '/usr/sbin/sshd';
const HW = 'open-doorbell/sim-x64';
/** The board's node for the unit: not the default /usr/bin/node, to see that --node reaches the board. */
const BOARD_NODE = '/opt/node-20/bin/node';

function exec(file: string, args: string[]): Promise<Run> {
  return new Promise((res) =>
    execFile(file, args, (err, stdout, stderr) =>
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    ),
  );
}

/**
 * Every relative path, type, mode, symlink target and content hash under `root`, with
 * `root` itself replaced by <ROOT> in file contents (the unit names its install path):
 * two boards flashed alike at different paths have equal trees.
 */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const d = join(root, rel);
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      let link: string | undefined;
      try {
        link = readlinkSync(p);
      } catch {
        link = undefined;
      }
      const st = statSync(p, { throwIfNoEntry: false });
      if (link !== undefined) out.push(`${r} -> ${link}`);
      else if (st?.isDirectory()) {
        out.push(`${r}/ ${st.mode.toString(8)}`);
        walk(r);
      } else if (st) {
        const data = readFileSync(p);
        const text = data.toString('latin1');
        const normal = text.includes(root) ? Buffer.from(text.replaceAll(root, '<ROOT>'), 'latin1') : data;
        out.push(`${r} ${st.mode.toString(8)} ${createHash('sha256').update(normal).digest('hex')}`);
      }
    }
  };
  walk('');
  return out;
}

/** Resolves once sshd (-D -e) says it listens on `port`; rejects if it exits first or stays silent 10 s. */
function sshdListening(port: number, child: ChildProcess, output: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      child.stderr?.off('data', check);
      child.off('exit', exited);
      if (err) reject(err);
      else resolve();
    };
    const check = (): void => {
      if (new RegExp(`Server listening on \\S+ port ${port}`).test(output())) done();
    };
    const exited = (): void =>
      done(new Error(`sshd exited (${child.exitCode ?? child.signalCode}):\n${output()}`));
    const timer = setTimeout(() => done(new Error(`sshd did not listen on ${port}:\n${output()}`)), 10_000);
    child.stderr?.on('data', check);
    child.once('exit', exited);
    check();
  });
}

describe('doorbell-flash over ssh:// to a real sshd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssh-flash-e2e-'));
  const env = { XDG_CONFIG_HOME: join(dir, 'xdg') };
  const user = userInfo().username;
  const sshConfig = join(dir, 'ssh_config');
  const boardTmp = join(dir, 'board-tmp');
  const remoteCalls = join(dir, 'remote-calls.log');
  const sshStarts = join(dir, 'ssh-starts.log');
  /** The flasher's PATH: `ssh` is a shim that logs each start, then runs the real ssh. */
  const clientPath = `${join(dir, 'client-bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`;
  let sshd: ChildProcess | undefined;
  let sshdOut = '';
  let createdPrivsepDir = false;
  let port = 0;
  let bundlePath = '';
  let bundle: Buffer;
  let pub = '';

  const lines = (file: string): number =>
    existsSync(file) ? readFileSync(file, 'utf8').split('\n').length - 1 : 0;
  /** What the flash left in the board's temp directory (tsx, which runs the board's CLI, keeps its cache there). */
  const boardTmpFiles = (): string[] => readdirSync(boardTmp).filter((n) => !n.startsWith('tsx-'));
  const connections = (): number => sshdOut.match(/Connection from 127\.0\.0\.1/g)?.length ?? 0;
  const target = (root: string, p = port): string => `ssh://${user}@127.0.0.1:${p}${root}`;
  const flashArgs = (tgt: string, file = bundlePath, extra: string[] = []): string[] => [
    'flash',
    '--bundle',
    file,
    '--target',
    tgt,
    '--hardware',
    HW,
    '--release-pubkey',
    pub,
    '--node',
    BOARD_NODE,
    ...(tgt.startsWith('ssh://') ? ['--ssh-config', sshConfig] : ['--install-path', tgt]),
    ...extra,
  ];
  const flash = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    run('flash/cli.ts', args, { ...env, PATH: clientPath, ...extraEnv });

  before(async () => {
    // The bundle, built as flash.e2e.test.ts builds it.
    const keyPath = join(dir, 'keys', 'release.pem');
    const keygen = await run('flash/cli.ts', ['keygen', '--out', keyPath], env);
    assert.equal(keygen.code, 0, keygen.stderr);
    pub = publicKeyToText(await loadSigningKey(keyPath));
    const built = await run('scripts/bundle.ts', ['--key', keyPath, '--out', join(dir, 'fw.bundle')], env);
    assert.equal(built.code, 0, built.stderr);
    bundlePath = built.stdout.trim().split('\n').at(-1) ?? '';
    assert.equal(bundlePath, join(dir, 'fw.bundle'));
    bundle = readFileSync(bundlePath);

    // Keys: the server's host key and the flasher's client key.
    for (const name of ['host_key', 'client_key']) {
      const r = await exec('ssh-keygen', [
        '-q',
        '-t',
        'ed25519',
        '-N',
        '',
        '-C',
        name,
        '-f',
        join(dir, name),
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
    port = await freePort();
    const hostPub = readFileSync(join(dir, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPub}\n`);

    // The board: doorbell-flash on its PATH is this repository's CLI; its temp files in
    // board-tmp; no development key there (a board has none).
    mkdirSync(join(dir, 'bin'));
    mkdirSync(boardTmp);
    const wrapper = join(dir, 'bin', 'doorbell-flash');
    writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        `echo "$*" >> '${remoteCalls}'`,
        `XDG_CONFIG_HOME='${join(dir, 'board-xdg')}' exec '${process.execPath}' --import '${import.meta.resolve('tsx')}' '${join(REPO, 'flash', 'cli.ts')}' "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(wrapper, 0o755);
    mkdirSync(join(dir, 'client-bin'));
    const shim = join(dir, 'client-bin', 'ssh');
    writeFileSync(shim, `#!/bin/sh\necho "$*" >> '${sshStarts}'\nexec /usr/bin/ssh "$@"\n`);
    chmodSync(shim, 0o755);

    writeFileSync(
      join(dir, 'sshd_config'),
      [
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${join(dir, 'host_key')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `AllowUsers ${user}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'StrictModes no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        // The session's environment (OpenSSH >= 7.8); a login shell's rc files may still prepend to PATH.
        `SetEnv PATH=${join(dir, 'bin')}:/usr/bin:/bin TMPDIR=${boardTmp}`,
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    // The flasher's ssh: this key and these known hosts only, never ~/.ssh, an agent or a prompt.
    writeFileSync(
      sshConfig,
      [
        `IdentityFile ${join(dir, 'client_key')}`,
        'IdentitiesOnly yes',
        'IdentityAgent none',
        `UserKnownHostsFile ${join(dir, 'known_hosts')}`,
        'GlobalKnownHostsFile /dev/null',
        'StrictHostKeyChecking yes',
        'BatchMode yes',
        'ConnectTimeout 5',
        '',
      ].join('\n'),
    );
    // As root, sshd insists on its privilege separation directory (systemd creates it for the service).
    if (process.getuid?.() === 0 && !existsSync('/run/sshd')) {
      mkdirSync('/run/sshd', { mode: 0o755 });
      createdPrivsepDir = true;
    }
    const checked = await exec(SSHD, ['-t', '-f', join(dir, 'sshd_config')]);
    assert.equal(checked.code, 0, `sshd -t: ${checked.stderr}`);
    sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'pipe', 'pipe'] });
    sshd.stdout?.on('data', (d: Buffer) => {
      sshdOut += d.toString();
    });
    sshd.stderr?.on('data', (d: Buffer) => {
      sshdOut += d.toString();
    });
    await sshdListening(port, sshd, () => sshdOut);
  });

  after(async () => {
    if (sshd?.pid !== undefined && sshd.exitCode === null && sshd.signalCode === null) {
      const child = sshd;
      const exited = new Promise((res) => child.once('exit', res));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(2000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (createdPrivsepDir) {
      try {
        rmdirSync('/run/sshd');
      } catch {
        // in use by another sshd started since: leave it
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const dirBoard = join(dir, 'dir-board');
  const sshBoard = join(dir, 'ssh-board');

  it('the sshd and the client config work: a plain command runs on the "board"', async () => {
    const r = await exec('ssh', [
      '-F',
      sshConfig,
      '-p',
      String(port),
      '--',
      `${user}@127.0.0.1`,
      'command -v doorbell-flash',
    ]);
    assert.equal(r.code, 0, `${r.stderr}\n${sshdOut}`);
    assert.equal(r.stdout.trim(), join(dir, 'bin', 'doorbell-flash'));
    assert.equal(readFileSync(join(dir, 'sshd.pid'), 'utf8').trim(), String(sshd?.pid));
  });

  it('flashes over ssh:// exactly as into a directory, and the slot verifies', async () => {
    const local = await flash(flashArgs(dirBoard));
    assert.equal(local.code, 0, local.stderr);
    const starts = lines(sshStarts);
    const r = await flash(flashArgs(target(sshBoard)));
    assert.equal(r.code, 0, `${r.stderr}\n${sshdOut}`);
    assert.equal(lines(sshStarts), starts + 1);
    assert.match(r.stdout, new RegExp(`into slot a of ${sshBoard}\\n`));
    assert.match(r.stderr, /^verify 100%$/m, 'verified locally first');

    const expected = tree(dirBoard);
    assert.ok(expected.some((l) => l.startsWith('slots/a/doorbell.js ')));
    assert.ok(expected.some((l) => l.startsWith('etc/systemd/doorbell.service ')));
    assert.ok(expected.some((l) => l.startsWith('etc/doorbell/config.json ')));
    assert.deepEqual(tree(sshBoard), expected);
    const unit = readFileSync(join(sshBoard, 'etc', 'systemd', 'doorbell.service'), 'utf8');
    assert.ok(unit.includes(`${sshBoard}/`), 'the unit is rendered for the URL path');
    assert.match(
      unit,
      new RegExp(`^ExecStart=${BOARD_NODE} `, 'm'),
      'the unit runs the --node given to the flasher',
    );

    const state = await readBootState(sshBoard);
    assert.deepEqual(state, await readBootState(dirBoard));
    assert.equal(state.committed, 'a');
    assert.equal(state.committedCounter, 1);
    const trust = await loadBoardTrust(sshBoard);
    assert.equal(trust.hardware, HW);
    assert.equal(trust.allowDevelopment, false);
    assert.deepEqual(readFileSync(join(sshBoard, 'etc', 'doorbell', 'release-keys'), 'utf8'), `${pub}\n`);
    const m = await verifySlot(sshBoard, 'a', trust, state.committedCounter);
    assert.equal(m.hardware, HW);
    assert.deepEqual(boardTmpFiles(), [], 'the streamed bundle is removed from the board');
  });

  it('a second flash over ssh:// goes to slot b and keeps the config', async () => {
    const configPath = join(sshBoard, 'etc', 'doorbell', 'config.json');
    const edited = `${readFileSync(configPath, 'utf8').trimEnd()}\n`;
    writeFileSync(configPath, edited);
    const r = await flash(flashArgs(target(sshBoard)));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /into slot b of /);
    const state = await readBootState(sshBoard);
    assert.equal(state.committed, 'b');
    assert.equal(readlinkSync(join(sshBoard, 'slots', 'current')), 'b');
    await verifySlot(sshBoard, 'b', await loadBoardTrust(sshBoard), state.committedCounter);
    assert.equal(readFileSync(configPath, 'utf8'), edited);
  });

  it('refuses a tampered bundle and a wrong --hardware locally: ssh is never started', async () => {
    const tampered = Buffer.from(bundle);
    tampered[tampered.length - 100] = (tampered[tampered.length - 100] ?? 0) ^ 1;
    const tamperedPath = join(dir, 'tampered.bundle');
    writeFileSync(tamperedPath, tampered);
    const before = tree(sshBoard);
    const starts = lines(sshStarts);
    const calls = lines(remoteCalls);
    const conns = connections();
    assert.ok(conns >= 3, `sshd logs its connections:\n${sshdOut}`);
    const cases: Array<[string, string[], number, RegExp]> = [
      [
        'tampered',
        flashArgs(target(sshBoard), tamperedPath),
        EXIT.damaged,
        /bundle refused, nothing was written/,
      ],
      [
        'wrong --hardware',
        flashArgs(target(sshBoard)).map((a) => (a === HW ? 'open-doorbell/rpi-arm64' : a)),
        EXIT.hardware,
        /bundle refused, nothing was written: .*hardware/,
      ],
    ];
    for (const [name, args, code, message] of cases) {
      const r = await flash(args);
      assert.equal(r.code, code, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
    }
    assert.equal(lines(sshStarts), starts, 'ssh was started');
    assert.equal(lines(remoteCalls), calls, 'doorbell-flash ran on the board');
    assert.equal(connections(), conns, 'sshd saw a connection');
    assert.deepEqual(tree(sshBoard), before);
    assert.deepEqual(boardTmpFiles(), []);
  });

  it('a board whose hardware file disagrees refuses the bundle there, writing nothing', async () => {
    const other = join(dir, 'other-board');
    mkdirSync(join(other, 'etc', 'doorbell'), { recursive: true });
    writeFileSync(join(other, 'etc', 'doorbell', 'hardware'), 'open-doorbell/rpi-arm64\n');
    const before = tree(other);
    const calls = lines(remoteCalls);
    const r = await flash(flashArgs(target(other)));
    assert.equal(r.code, EXIT.hardware, r.stderr);
    assert.match(
      r.stderr,
      /--hardware open-doorbell\/sim-x64 but .* says open-doorbell\/rpi-arm64; nothing was written/,
    );
    assert.equal(lines(remoteCalls), calls + 1, 'the board checked it');
    assert.deepEqual(tree(other), before);
    assert.deepEqual(boardTmpFiles(), []);
  });

  it('a development build with --dev: trusted through the flasher key, the board needs none of its own', async () => {
    const devKey = (await loadOrCreateSigningKey(devKeyPath(env))).key;
    const { meta, files } = unpack(bundle);
    const devPath = join(dir, 'dev.bundle');
    writeFileSync(devPath, buildBundle(files, { ...meta, development: true }, devKey));
    const devBoard = join(dir, 'dev-board');
    const r = await flash(flashArgs(target(devBoard), devPath, ['--dev']));
    assert.equal(r.code, 0, r.stderr);
    const trust = await loadBoardTrust(devBoard);
    assert.equal(trust.allowDevelopment, true);
    assert.ok(trust.keys.has(devKey.keyId));
    await verifySlot(devBoard, 'a', trust, 0);
  });

  it("the README's and docs/flashing.md's ssh:// commands run as written, the board named in the user's ssh configuration", async () => {
    // The user's usual ssh configuration (ssh reads ~/.ssh from the passwd entry, not $HOME,
    // so it is given to the real ssh by a shim on PATH): the boards' names, this key, these hosts.
    const userConfig = join(dir, 'user_ssh_config');
    writeFileSync(
      userConfig,
      `Host front-door.local doorbell.local\n  HostName 127.0.0.1\n  Port ${port}\n${readFileSync(sshConfig, 'utf8')}`,
    );
    mkdirSync(join(dir, 'user-bin'), { recursive: true });
    const shim = join(dir, 'user-bin', 'ssh');
    writeFileSync(shim, `#!/bin/sh\nexec /usr/bin/ssh -F '${userConfig}' "$@"\n`);
    chmodSync(shim, 0o755);
    const userPath = `${join(dir, 'user-bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`;
    const commands = [
      docCommand('README.md', 'npm run doorbell-flash -- flash --bundle dist/bundles/'),
      docCommand('docs/flashing.md', 'npm run doorbell-flash -- flash --bundle FILE --target ssh://'),
    ];
    for (const [i, command] of commands.entries()) {
      const root = join(dir, `doc-board-${i}`);
      const text = withValues(command, {
        ...(command.text.includes('FILE')
          ? { FILE: bundlePath }
          : { 'dist/bundles/open-doorbell-0.1.0-rpi-arm64.bundle': bundlePath }),
        'pi@': `${user}@`,
        '/opt/doorbell': root,
        'open-doorbell/rpi-arm64': HW,
        'ed25519:...': pub,
      });
      const r = runDocCommand(text, { env: { ...env, PATH: userPath } });
      const code = await r.exited(120_000);
      assert.equal(code, 0, `${text}\n${r.stderr}\n${sshdOut}`);
      assert.match(r.stdout, new RegExp(`into slot a of ${root}\\n`));
      const state = await readBootState(root);
      assert.equal(state.committed, 'a');
      await verifySlot(root, 'a', await loadBoardTrust(root), state.committedCounter);
    }
  });

  it('an unreachable host: a clear error and exit 21, no crash', async () => {
    const closed = await freePort();
    const r = await flash(flashArgs(target(join(dir, 'nowhere'), closed)));
    assert.equal(r.code, EXIT.target, r.stderr);
    assert.match(r.stderr, /Connection refused/);
    assert.match(r.stderr, new RegExp(`ssh to ${user}@127\\.0\\.0\\.1 failed \\(exit 255\\)`));
    assert.doesNotMatch(r.stderr, /EPIPE|at .*\.ts:\d+/);
    assert.equal(existsSync(join(dir, 'nowhere')), false);
  });

  // ssh >= 9.x refuses such host and user names itself; `--` keeps older ones from reading them as options.
  it('a host that looks like an option is a host, not an ssh option', async () => {
    const marker = join(dir, 'injected');
    const evil = join(dir, 'client-bin', 'evil');
    writeFileSync(evil, `#!/bin/sh\ntouch '${marker}'\n`);
    chmodSync(evil, 0o755);
    const r = await flash(flashArgs('ssh://-oProxyCommand=evil/tmp/x'));
    assert.equal(existsSync(marker), false, 'ssh ran a ProxyCommand from the URL');
    assert.equal(r.code, EXIT.target, r.stderr);
  });
});
