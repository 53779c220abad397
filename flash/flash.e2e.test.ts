import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadBoardTrust } from '../board/board-files.js';
import { buildBundle, HEADER_BYTES, MAX_BUNDLE_BYTES } from '../board/manifest.js';
import { readBootState } from '../board/slots.js';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { connectWires, type WireClient } from '../hal/sim/wire-client.js';
import { loadOrCreateSigningKey, loadSigningKey, publicKeyToText, type SigningKey } from '../proto/keys.js';
import { docCommand, runDocCommand, withValues } from '../test-support/doc-commands.js';
import { observeDevices } from '../test-support/hub-observer.js';
import { type SlotDaemon, startSlotDaemon, waitForRetainedOnline } from '../test-support/slot-daemon.js';
import { EXIT } from './exit-codes.js';
import { REPO, type Run, run, snapshot, unpack } from './test-helpers.js';

describe('doorbell-flash on the real bundle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flash-e2e-'));
  const env = { XDG_CONFIG_HOME: join(dir, 'xdg') };
  const HW = 'open-doorbell/sim-x64';
  let broker: RunningBroker | undefined;
  const daemons: SlotDaemon[] = [];
  let bundlePath = '';
  let bundle: Buffer;
  let key: SigningKey;
  let pub = '';
  const mounts: string[] = [];

  before(async () => {
    // The release key and the bundle, made with the commands of the README and docs/flashing.md as
    // written, in a home directory of the test's own.
    const home = { ...env, HOME: dir };
    const keygenDoc = docCommand('README.md', 'npm run doorbell-flash -- keygen');
    assert.equal(docCommand('docs/flashing.md', 'npm run doorbell-flash -- keygen').text, keygenDoc.text);
    const keygen = runDocCommand(keygenDoc.text, { env: home });
    assert.equal(await keygen.exited(60_000), 0, keygen.stderr);
    const keyPath = join(dir, 'keys', 'doorbell-release.pem');
    key = await loadSigningKey(keyPath);
    pub = publicKeyToText(key);
    assert.match(keygen.stdout, new RegExp(pub));
    const again = await run('flash/cli.ts', ['keygen', '--out', keyPath], env);
    assert.equal(again.code, 1, 'keygen never overwrites a key');
    const bundleDoc = docCommand('README.md', 'npm run bundle -- --key ~/keys/doorbell-release.pem');
    assert.equal(docCommand('docs/flashing.md', 'npm run bundle -- --key ~/keys/').text, bundleDoc.text);
    const built = runDocCommand(bundleDoc.text, { env: home });
    assert.equal(await built.exited(120_000), 0, built.stderr);
    const printed = built.stdout.trim().split('\n').at(-1) ?? '';
    assert.equal(
      printed,
      join(REPO, 'dist', 'bundles', 'open-doorbell-0.1.0-sim-x64.bundle'),
      'the last line is its path',
    );
    bundlePath = join(dir, 'fw.bundle');
    copyFileSync(printed, bundlePath);
    rmSync(printed);
    bundle = readFileSync(bundlePath);
    broker = await startMosquitto();
  });
  after(async () => {
    for (const d of daemons) await d.stop('SIGKILL');
    await broker?.stop();
    for (const m of mounts) await new Promise((r) => execFile('umount', [m], r));
    rmSync(dir, { recursive: true, force: true });
  });

  const flashArgs = (target: string, file = bundlePath, extra: string[] = []): string[] => [
    'flash',
    '--bundle',
    file,
    '--target',
    target,
    '--hardware',
    HW,
    '--release-pubkey',
    pub,
    '--install-path',
    target,
    '--node',
    process.execPath,
    ...extra,
  ];

  it('verify, run as docs/flashing.md writes it, prints what the docs show for a good bundle', async () => {
    const documented = docCommand('docs/flashing.md', 'npm run doorbell-flash -- verify');
    const r = runDocCommand(withValues(documented, { FILE: bundlePath, 'ed25519:...': pub }), { env });
    assert.equal(await r.exited(60_000), 0, r.stderr);
    const printed = r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('> '));
    // The docs' example output, with the parts that differ per bundle (hardware, key, expiry, count) as patterns.
    const flashing = readFileSync(join(REPO, 'docs', 'flashing.md'), 'utf8');
    const example =
      /for a good bundle it prints[^`]*```text\n([^`]*)```/.exec(flashing)?.[1]?.trim().split('\n') ?? [];
    assert.equal(example.length, 2, 'the docs show the output');
    assert.equal(printed.length, example.length, r.stdout);
    const shape = (line: string) =>
      new RegExp(
        `^${line
          .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
          .replace('open-doorbell/rpi-arm64', '[a-z0-9-]+/[a-z0-9-]+')
          .replace(/[0-9a-f]{16}/, '[0-9a-f]{16}')
          .replace(/\d{4}-\d\d-\d\dT[\d:]+\\\.\d{3}Z/, '\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z')
          .replace(/\d+ files/, '\\d+ files')}$`,
      );
    for (const [i, line] of example.entries()) assert.match(printed[i] ?? '', shape(line));
    assert.match(printed[0] ?? '', /^ok: open-doorbell\/sim-x64 0\.1\.0, security counter 1$/);
    assert.match(printed[1] ?? '', new RegExp(`^signed by ${key.keyId}, `));
  });

  it("docs/flashing.md's development build: signed with a key made in the user's config, marked development, refused without --dev", async () => {
    const home = { ...env, HOME: dir };
    const r = runDocCommand(docCommand('docs/flashing.md', 'npm run bundle').text, { env: home });
    assert.equal(await r.exited(120_000), 0, r.stderr);
    const printed = r.stdout.trim().split('\n').at(-1) ?? '';
    assert.equal(printed, join(REPO, 'dist', 'bundles', 'open-doorbell-0.1.0-sim-x64-dev.bundle'));
    const dev = join(dir, 'dev.bundle');
    copyFileSync(printed, dev);
    rmSync(printed);
    assert.match(r.stdout, /\(development build\)/);
    const devKey = await loadSigningKey(join(dir, 'xdg', 'open-doorbell', 'dev-release-key.pem'));
    const trusted = await run('flash/cli.ts', ['verify', '--bundle', dev, '--dev'], env);
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.match(trusted.stdout, new RegExp(`signed by ${devKey.keyId}`));
    const refused = await run(
      'flash/cli.ts',
      ['verify', '--bundle', dev, '--release-pubkey', publicKeyToText(devKey)],
      env,
    );
    assert.notEqual(refused.code, 0, 'a development build needs --dev (or --allow-development)');
    assert.match(refused.stderr, /development/);
  });

  it("docs/flashing.md's arm64 build runs on an arm64 machine and is refused elsewhere, naming the addon's architecture", async () => {
    const documented = docCommand(
      'docs/flashing.md',
      'npm run bundle -- --key /path/outside/repo/release.pem',
    );
    const keyPath = join(dir, 'keys', 'doorbell-release.pem');
    const r = runDocCommand(withValues(documented, { '/path/outside/repo/release.pem': keyPath }), { env });
    const code = await r.exited(120_000);
    const out = join(REPO, 'dist', 'bundles', 'open-doorbell-0.1.0-rpi-arm64.bundle');
    if (process.arch === 'arm64') {
      assert.equal(code, 0, r.stderr);
      assert.equal(r.stdout.trim().split('\n').at(-1), out);
      rmSync(out);
    } else {
      assert.equal(code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `\\.node is built for ${process.arch}, the bundle is for open-doorbell/rpi-arm64: build on the target architecture \\(docs/flashing\\.md\\)`,
        ),
      );
    }
  });

  it("docs/flashing.md's flash onto a mounted card: the root written there, the unit naming the board's own path", async () => {
    const card = join(dir, 'mnt', 'sdcard', 'opt', 'doorbell');
    const documented = docCommand(
      'docs/flashing.md',
      'npm run doorbell-flash -- flash --bundle FILE --target /mnt/sdcard',
    );
    const r = runDocCommand(
      withValues(documented, {
        FILE: bundlePath,
        '/mnt/sdcard/opt/doorbell': card,
        'open-doorbell/rpi-arm64': HW,
        'ed25519:...': pub,
      }),
      { env },
    );
    assert.equal(await r.exited(120_000), 0, r.stderr);
    assert.match(r.stdout, new RegExp(`into slot a of ${card}\\n`));
    const unit = readFileSync(join(card, 'etc', 'systemd', 'doorbell.service'), 'utf8');
    assert.match(unit, /^ExecStart=\/usr\/bin\/node \/opt\/doorbell\/slots\/current\//m);
    assert.ok(!unit.includes(card), 'the unit names where the board sees its root, not the card');
    const state = await readBootState(card);
    assert.equal(state.committed, 'a');
  });

  let root = '';
  it('flashes into a directory; the slot daemon starts there and publishes a retained signed ONLINE status', async () => {
    root = join(dir, 'board');
    const r = await run('flash/cli.ts', flashArgs(root), env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /into slot a/);
    const boardTrust = await loadBoardTrust(root);
    assert.deepEqual([...boardTrust.keys.keys()], [key.keyId]);
    assert.equal(boardTrust.hardware, HW);
    assert.equal(boardTrust.allowDevelopment, false, 'flashed without --dev');
    // What the unit's ExecStartPre runs: the committed firmware's boot selector.
    const selector = await new Promise<Run>((res) =>
      execFile(
        process.execPath,
        [join(root, 'slots', 'boot-select.js'), '--root', root],
        (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    assert.equal(selector.code, 0, selector.stderr);
    assert.deepEqual(JSON.parse(selector.stdout), { slot: 'a', mode: 'committed', version: '0.1.0' });
    assert.ok(broker);
    const daemon = startSlotDaemon(root, broker.url, 'flash-e2e');
    daemons.push(daemon);
    const status = await waitForRetainedOnline(broker.port, 'flash-e2e', join(root, 'state')).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${daemon.output()}`);
      },
    );
    assert.ok(status.length > 64);
    await daemon.stop();
    assert.equal(daemon.child.exitCode, 0, daemon.output());
  });

  it('Ctrl-C while flashing says what state the target is in, and the same command run again finishes it', async () => {
    const target = join(dir, 'interrupted');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'flash/cli.ts'), ...flashArgs(target)],
      {
        cwd: REPO,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.stdout.resume();
    // Interrupt as soon as it starts writing the slot (its progress says so), as a user's Ctrl-C would.
    await new Promise<void>((resolveWrite, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/^write \d+%$/m.test(stderr)) resolveWrite();
      });
      void exited.then(() => reject(new Error(`the flash ended before writing: ${stderr}`)));
    });
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    const said = /doorbell-flash: (interrupted [^\n]*)/.exec(stderr)?.[1] ?? '';
    assert.match(said, /Run the same command again to finish the flash\.$/, stderr);
    const state = await readBootState(target);
    if (said.startsWith('interrupted while writing slot a')) {
      assert.match(said, /there was no bootable slot on it before, and there is none yet/);
      assert.equal(state.committed, null, 'what it says is what is on disk');
    } else {
      // The signal landed after the slot was written (a fast disk): then it says so.
      assert.match(said, /switching .* to slot a|after slot a of .* was committed/);
    }
    const again = await run('flash/cli.ts', flashArgs(target), env);
    assert.equal(again.code, 0, again.stderr);
    const selector = await new Promise<Run>((res) =>
      execFile(
        process.execPath,
        [join(target, 'slots', 'boot-select.js'), '--root', target],
        (err, stdout, stderr2) => res({ code: err ? 1 : 0, stdout, stderr: stderr2 }),
      ),
    );
    assert.equal(selector.code, 0, selector.stderr);
    assert.equal((JSON.parse(selector.stdout) as { mode: string }).mode, 'committed');
    assert.equal((await loadBoardTrust(target)).hardware, HW, 'the board files are complete');
  });

  it('a flashed board with a camera records: started as its unit starts it, a press yields a clip the owner can play', async () => {
    assert.ok(broker);
    const root = join(dir, 'camera-board');
    const flashed = await run('flash/cli.ts', flashArgs(root), env);
    assert.equal(flashed.code, 0, flashed.stderr);
    const slot = join(root, 'slots', 'a');
    const shipped = snapshot(slot).map((l) => l.slice(slot.length + 1).split(' ')[0]);
    assert.ok(shipped.includes('worker/main.js'), 'the media worker is in the slot');
    assert.ok(
      shipped.includes('node_modules/gstreamer-superficial/build/Release/gstreamer-superficial.node'),
    );
    // The owner's config, as a user writes it: a camera (the generated test picture here).
    const ownerKey = join(dir, 'owner-age.txt');
    await promisify(execFile)('age-keygen', ['-o', ownerKey]);
    const recipient = (await promisify(execFile)('age-keygen', ['-y', ownerKey])).stdout.trim();
    const state = join(root, 'state');
    const socket = join(dir, 'camera-board.sock');
    writeFileSync(
      join(root, 'etc', 'doorbell', 'config.json'),
      JSON.stringify({
        deviceId: 'camera-board',
        broker: { url: broker.url },
        hal: { backend: 'sim', sim: { socket } },
        media: {
          camera: {
            source: { kind: 'test' },
            width: 160,
            height: 120,
            fps: 10,
            bitrateKbps: 200,
            segmentS: 1,
            prerollS: 1,
            postrollS: 1,
            ringDir: join('/dev/shm', `doorbell-flash-e2e-${process.pid}`),
          },
          recordMotion: false,
          store: { recipients: [recipient] },
        },
      }),
    );
    const { key: deviceKey } = await loadOrCreateSigningKey(join(state, 'identity.pem'));
    const hub = observeDevices(broker.url, new Map([['camera-board', deviceKey]]), silentLogger());
    // The unit's own command lines (flash --install-path is the directory itself).
    const unit = readFileSync(join(root, 'etc', 'systemd', 'doorbell.service'), 'utf8');
    const line = (name: string) => (new RegExp(`^${name}=(.*)$`, 'm').exec(unit)?.[1] ?? '').split(' ');
    const [node = '', ...pre] = line('ExecStartPre');
    const selected = await promisify(execFile)(node, pre);
    assert.match(selected.stdout, /"slot":"a"/);
    const [node2 = '', ...args] = line('ExecStart');
    const daemon = spawn(node2, args, {
      env: { ...process.env, DOORBELL_ROOT: root, DOORBELL_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    daemon.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    daemon.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const gone = new Promise((r) => daemon.once('exit', r));
    let wires: WireClient | undefined;
    try {
      await hub.log.waitFor((e) => e.event.mediaHealth?.state === 'pipeline-up', 60_000, 'the pipeline up');
      wires = await connectWires(socket);
      await wires.press(100);
      const recorded = await hub.log.waitFor((e) => e.event.kind === 'clipRecorded', 60_000, 'a clip');
      const id = recorded.event.clipRecorded?.clipId ?? '';
      const clips = join(state, 'clips');
      const file = readdirSync(clips).find(
        (f) => f.startsWith(`${id}_`) && f.endsWith('.age') && !f.endsWith('.meta.age'),
      );
      assert.ok(file, `the clip ${id} is stored`);
      const mp4 = join(dir, 'camera-board.mp4');
      await promisify(execFile)('age', ['-d', '-i', ownerKey, '-o', mp4, join(clips, file)]);
      const probe = await promisify(execFile)('ffprobe', [
        '-v',
        'error',
        '-show_entries',
        'stream=codec_name',
        '-of',
        'csv=p=0',
        mp4,
      ]);
      assert.equal(probe.stdout.trim(), 'h264', 'ffprobe reads an H.264 clip');
    } catch (err) {
      throw new Error(`${(err as Error).message}\nthe daemon said:\n${output}`);
    } finally {
      await wires?.close();
      daemon.kill('SIGTERM');
      await gone;
      await hub.stop();
    }
  });

  it('systemd-analyze verify accepts the rendered unit', async () => {
    const unit = join(root, 'etc', 'systemd', 'doorbell.service');
    const text = readFileSync(unit, 'utf8');
    assert.match(text, /^Type=notify$/m);
    assert.match(text, /^WatchdogSec=/m);
    // Plaintext video in the RAM ring never reaches swap on the SD card.
    assert.match(text, /^MemorySwapMax=0$/m);
    assert.doesNotMatch(text, /@ROOT@|@NODE@/);
    const r = await new Promise<Run>((res) =>
      execFile('systemd-analyze', ['verify', unit], (err, stdout, stderr) =>
        res({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /doorbell\.service/, r.stderr);
  });

  it('refuses bad bundles before writing anything, with typed exit codes', async () => {
    const { meta, files } = unpack(bundle);
    const write = (name: string, data: Buffer): string => {
      const p = join(dir, `${name}.bundle`);
      writeFileSync(p, data);
      return p;
    };
    const tampered = Buffer.from(bundle);
    tampered[tampered.length - 100] = (tampered[tampered.length - 100] ?? 0) ^ 1;
    const unsigned = Buffer.from(bundle);
    unsigned.fill(0, 24, HEADER_BYTES);
    const now = Date.now();
    const oversized = join(dir, 'oversized.bundle');
    const fd = openSync(oversized, 'w');
    ftruncateSync(fd, MAX_BUNDLE_BYTES + 1); // sparse: costs no disk
    closeSync(fd);
    const cases: Array<[string, string, number, string[]?]> = [
      ['tampered', write('tampered', tampered), EXIT.damaged],
      ['unsigned', write('unsigned', unsigned), EXIT.signature],
      [
        'expired',
        write(
          'expired',
          buildBundle(files, { ...meta, createdAtMs: now - 2000, expiresAtMs: now - 1000 }, key),
        ),
        EXIT.expired,
      ],
      [
        'wrong-hardware',
        write('hw', buildBundle(files, { ...meta, hardware: 'open-doorbell/rpi-arm64' }, key)),
        EXIT.hardware,
      ],
      ['downgraded', write('down', buildBundle(files, { ...meta, securityCounter: 0 }, key)), EXIT.downgrade],
      ['oversized', oversized, EXIT.damaged],
      [
        'development',
        write('dev', buildBundle(files, { ...meta, development: true }, key)),
        EXIT.development,
      ],
      ['wrong hardware file', bundlePath, EXIT.hardware, ['--hardware', 'open-doorbell/rpi-arm64']],
    ];
    const before = snapshot(root);
    assert.ok(before.length > 10);
    for (const [name, path, code, extra] of cases) {
      const args = flashArgs(root, path);
      if (extra) args.splice(args.indexOf('--hardware'), 2, ...extra);
      const r = await run('flash/cli.ts', args, env);
      assert.equal(r.code, code, `${name}: ${r.stderr}`);
      assert.match(
        r.stderr,
        name === 'wrong hardware file' ? /nothing was written/ : /bundle refused, nothing was written/,
      );
      assert.deepEqual(snapshot(root), before, `${name} changed the target`);
      // A fresh target stays empty too (counter 0 is no downgrade on a board that never committed one).
      if (name === 'downgraded') continue;
      const empty = join(dir, `empty-${name.replaceAll(' ', '-')}`);
      mkdirSync(empty);
      const r2 = await run(
        'flash/cli.ts',
        args.map((a) => (a === root ? empty : a)),
        env,
      );
      assert.equal(r2.code, code, `${name} (fresh): ${r2.stderr}`);
      assert.deepEqual(snapshot(empty), [], `${name} wrote into a fresh target`);
    }
  });

  it('refuses a full disk before writing (a 1 MiB tmpfs), when mounting is allowed', async (t) => {
    const mnt = join(dir, 'small');
    mkdirSync(mnt);
    const mounted = await new Promise<boolean>((res) =>
      execFile('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], (err) => res(!err)),
    );
    if (!mounted) {
      t.skip('cannot mount a tmpfs here');
      return;
    }
    mounts.push(mnt);
    const r = await run('flash/cli.ts', flashArgs(mnt), env);
    assert.equal(r.code, EXIT.space, r.stderr);
    assert.match(r.stderr, /no-space: the target has \d+ bytes free; this bundle needs \d+/);
    assert.deepEqual(snapshot(mnt), []);
  });

  it('the bundle ships onoff and the epoll addon, and the slot resolves them', async () => {
    const slot = join(root, 'slots', 'current');
    const r = await new Promise<Run>((res) => {
      const child = spawn(
        process.execPath,
        ['--input-type=module', '-e', "const { Gpio } = await import('onoff'); console.log(typeof Gpio)"],
        { cwd: slot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('exit', (code) => res({ code, stdout, stderr }));
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'function');
  });
});
