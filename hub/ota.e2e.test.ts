import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeBoardFiles } from '../board/board-files.js';
import { type BundleMeta, buildBundle, keyMap } from '../board/manifest.js';
import {
  type BoardTrust,
  commit,
  installToInactiveSlot,
  readBootState,
  switchToTrial,
} from '../board/slots.js';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { type Run, unpack } from '../flash/test-helpers.js';
import {
  doorbell,
  generateSigningKey,
  loadOrCreateSigningKey,
  publicKeyToPem,
  publicKeyToText,
  type SigningKey,
  topicsFor,
  verifyKeyOf,
} from '../proto/index.js';
import { auditOrigin, auditVerifier, checkAuditLog } from '../proto/tlog/audit.js';
import { buildFirmwareBundle } from '../scripts/bundle-build.js';
import { readDeviceAudit } from '../test-support/device-audit.js';
import { docCommand, runDocCommand, withValues } from '../test-support/doc-commands.js';
import { waitFor } from '../test-support/wait-for.js';
import { addDevice, ownerKeyPath } from './hub-state.js';

/**
 * Updates over MQTT end to end, on real parts: a board root flashed with v1
 * (security counter 1), its slot daemon run by a small supervisor that
 * imitates systemd (the committed boot selector before every start, a
 * restart on exit 75 or a crash), a real Mosquitto, and the hub CLI
 * `doorbell-hub ota push` signing with the owner key (provisioned as
 * Administer in the board's config). The tests run in order on one board.
 */

const REPO = resolve(import.meta.dirname, '..');
const HW = 'open-doorbell/sim-x64';
const DEVICE = 'ota-e2e';

/** Imitates systemd for the unit: boot selector, then the daemon; restart on 75 or a crash, at most `maxStarts`. */
class Supervisor {
  readonly boots: { slot: string; mode: string; version: string }[] = [];
  readonly exits: (number | string)[] = [];
  private child: ChildProcess | undefined;
  private stopped = false;
  private out = '';
  private loop: Promise<void> | undefined;

  constructor(
    private readonly root: string,
    private readonly brokerUrl: string,
    private readonly maxStarts = 12,
  ) {}

  output(): string {
    return this.out.slice(-20_000);
  }

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.boots.length < this.maxStarts) {
      const sel = await new Promise<Run>((res) =>
        execFile(
          process.execPath,
          [join(this.root, 'slots', 'boot-select.js'), '--root', this.root],
          { timeout: 30_000 },
          (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr }),
        ),
      );
      if (sel.code !== 0) {
        this.out += `boot-select failed: ${sel.stderr}\n`;
        return;
      }
      this.boots.push(JSON.parse(sel.stdout) as { slot: string; mode: string; version: string });
      if (this.stopped) return;
      const child = spawn(
        process.execPath,
        [
          join(this.root, 'slots', 'current', 'doorbell.js'),
          'run',
          '--config',
          join(this.root, 'etc', 'doorbell', 'config.json'),
          '--state-dir',
          join(this.root, 'state'),
          '--hal',
          'sim',
          '--broker',
          this.brokerUrl,
          '--device-id',
          DEVICE,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOORBELL_ROOT: this.root } },
      );
      this.child = child;
      const onData = (d: Buffer): void => {
        this.out += d.toString();
        if (this.out.length > 200_000) this.out = this.out.slice(-100_000);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) =>
        child.once('exit', (c, s) => res([c, s])),
      );
      this.child = undefined;
      this.exits.push(code ?? String(signal));
      if (this.stopped) return;
      // Restart=on-failure: 75 is a non-zero exit like any crash; a clean 0 is not restarted.
      if (code === 0) return;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await new Promise((r) => child.once('exit', r));
      clearTimeout(timer);
    }
    await this.loop;
  }
}

/** Every path, type and content hash under `dir`. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const link = await readlink(p).catch(() => undefined);
      if (link !== undefined) {
        out.push(`${p} -> ${link}`);
        continue;
      }
      const st = await stat(p);
      if (st.isDirectory()) {
        out.push(`${p}/`);
        await walk(p);
      } else
        out.push(
          `${p} ${createHash('sha256')
            .update(await readFile(p))
            .digest('hex')}`,
        );
    }
  };
  await walk(dir);
  return out;
}

describe('updates over MQTT on a flashed board', () => {
  let dir = '';
  let root = '';
  let hubDir = '';
  let broker: RunningBroker | undefined;
  let supervisor: Supervisor | undefined;
  const children = new Set<ChildProcess>();
  let releaseKey: SigningKey;
  let deviceKey: SigningKey;
  const bundles: Record<string, string> = {};

  const hub = (args: string[], timeoutMs = 60_000): { child: ChildProcess; done: Promise<Run> } => {
    assert.ok(broker);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO, 'hub', 'cli.ts'),
        ...args,
        '--state-dir',
        hubDir,
        '--broker',
        broker.url,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const done = new Promise<Run>((res) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        children.delete(child);
        res({ code, stdout, stderr });
      });
    });
    return { child, done };
  };
  const push = (bundle: string, timeoutMs = 30_000): Promise<Run> =>
    hub(['ota', 'push', bundle, DEVICE, '--timeout-ms', String(timeoutMs)]).done;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ota-e2e-'));
    // A release key outside the repository, as `doorbell-flash keygen` makes one.
    const keyPath = join(dir, 'keys', 'release.pem');
    releaseKey = (await loadOrCreateSigningKey(keyPath)).key;
    const built = await buildFirmwareBundle({
      keyPath,
      devKeyPath: join(dir, 'keys', 'dev.pem'),
      hardware: HW,
      securityCounter: 1,
      version: '0.1.0',
      out: join(dir, 'v1.bundle'),
    });
    bundles.v1 = built.path;
    const { meta, files } = unpack(await readFile(built.path));
    const variant = async (
      name: string,
      over: Partial<BundleMeta>,
      key: SigningKey = releaseKey,
      edit: (f: typeof files) => typeof files = (f) => f,
    ): Promise<void> => {
      const path = join(dir, `${name}.bundle`);
      await writeFile(path, buildBundle(edit(files), { ...meta, ...over }, key));
      bundles[name] = path;
    };
    const withDaemon = (text: (orig: Buffer) => Buffer) => (fs: typeof files) =>
      fs.map((f) => (f.path === 'doorbell.js' ? { ...f, data: text(f.data) } : f));
    await variant(
      'v2',
      { version: '0.2.0', securityCounter: 2 },
      releaseKey,
      withDaemon((d) => Buffer.concat([d, Buffer.from('\n// v2\n')])),
    );
    // v3 is signed correctly, but its daemon points itself at a port where no broker listens.
    await variant('v3bad', { version: '0.3.0', securityCounter: 3 }, releaseKey, (fs) => [
      ...fs.map((f) =>
        f.path === 'doorbell.js'
          ? {
              ...f,
              data: Buffer.from(
                "process.argv = process.argv.map((a) => (a.startsWith('mqtt://') ? 'mqtt://127.0.0.1:9' : a));\nawait import('./real-doorbell.js');\n",
              ),
            }
          : f,
      ),
      {
        path: 'real-doorbell.js',
        data: fs.find((f) => f.path === 'doorbell.js')?.data ?? Buffer.alloc(0),
        executable: false,
      },
    ]);
    // v4 is signed correctly, but its daemon exits at once: systemd restarts it until the boot selector gives up.
    await variant('v4crash', { version: '0.4.0', securityCounter: 3 }, releaseKey, (fs) =>
      fs.map((f) => (f.path === 'doorbell.js' ? { ...f, data: Buffer.from('process.exit(1);\n') } : f)),
    );
    await variant('downgrade', { version: '0.1.5', securityCounter: 1 });
    await variant('wronghw', { version: '0.2.1', securityCounter: 2, hardware: 'open-doorbell/rpi-arm64' });
    const now = Date.now();
    await variant('expired', {
      version: '0.2.2',
      securityCounter: 2,
      createdAtMs: now - 2000,
      expiresAtMs: now - 1000,
    });
    await variant('otherkey', { version: '0.2.3', securityCounter: 2 }, generateSigningKey());
    const v2 = await readFile(bundles.v2 ?? '');
    const tampered = Buffer.from(v2);
    const at = tampered.length - 100;
    tampered[at] = (tampered[at] ?? 0) ^ 1;
    bundles.tampered = join(dir, 'tampered.bundle');
    await writeFile(bundles.tampered, tampered);

    // Flash v1 and commit it, as `doorbell-flash flash` does.
    root = join(dir, 'board');
    const trust: BoardTrust = { keys: keyMap([releaseKey]), hardware: HW, allowDevelopment: false };
    const { slot } = await installToInactiveSlot(root, built.path, { trust });
    await switchToTrial(root, slot, { trust });
    await commit(root, { trust });
    await writeBoardFiles(root, {
      hardware: HW,
      releaseKeys: [publicKeyToText(releaseKey)],
      installPath: root,
      nodePath: process.execPath,
      slot,
    });
    // The hub's owner key, provisioned as Administer through the config; the device key pinned at the hub.
    hubDir = join(dir, 'hub');
    await mkdir(hubDir, { recursive: true, mode: 0o700 });
    const owner = (await loadOrCreateSigningKey(ownerKeyPath(hubDir))).key;
    const configPath = join(root, 'etc', 'doorbell', 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    await writeFile(
      configPath,
      JSON.stringify({
        ...config,
        trust: { hubKeys: [publicKeyToText(owner)], hubRole: 'administer' },
        ota: { trialHealthTimeoutMs: 3000 },
        broker: { reconnect: { minMs: 50, maxMs: 500 } },
      }),
    );
    deviceKey = (await loadOrCreateSigningKey(join(root, 'state', 'identity.pem'))).key;
    await addDevice(hubDir, DEVICE, publicKeyToText(deviceKey), true);

    broker = await startMosquitto();
    supervisor = new Supervisor(root, broker.url);
    supervisor.start();
    // Ready when the device's retained ONLINE status is on the broker: the daemon publishes it once
    // its command subscription is confirmed, so the first push is heard.
    await new Promise<void>((resolveReady, reject) =>
      execFile(
        'mosquitto_sub',
        ['-L', `${broker?.url}/${topicsFor(DEVICE).status}`, '-C', '1', '-W', '60'],
        { encoding: 'buffer' },
        (err) =>
          err
            ? reject(new Error(`no status from ${DEVICE}: ${err.message}\n${supervisor?.output()}`))
            : resolveReady(),
      ),
    );
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await supervisor?.stop();
    await broker?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const fail = (what: string, r?: Run): string =>
    `${what}\n--- hub stdout:\n${r?.stdout ?? ''}\n--- hub stderr:\n${r?.stderr.slice(-4000) ?? ''}\n--- device:\n${supervisor?.output().slice(-8000)}`;

  /**
   * `mosquitto_sub` (an independent client) collects raw payloads from the device's event
   * topic. Line-buffered (coreutils' stdbuf) with its debug lines, so its SUBACK says when it
   * listens; payloads are the lines of hex.
   */
  const subscribe = (): { ready: Promise<void>; stopAfter(stage: string): Promise<Buffer[]> } => {
    assert.ok(broker);
    const child = spawn(
      'stdbuf',
      [
        '-oL',
        'mosquitto_sub',
        '-d',
        '-h',
        '127.0.0.1',
        '-p',
        String(broker.port),
        '-V',
        'mqttv5',
        '-t',
        topicsFor(DEVICE).evt,
        '-F',
        '%x',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    let out = '';
    const changed = new EventEmitter();
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      changed.emit('data');
    });
    const payloads = (): Buffer[] =>
      out
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => /^([0-9a-f]{2})+$/.test(l))
        .map((l) => Buffer.from(l, 'hex'));
    const until = (done: () => boolean, what: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!done()) return;
          changed.off('data', check);
          child.off('exit', exited);
          resolve();
        };
        const exited = (): void => reject(new Error(`mosquitto_sub exited before ${what}:\n${out}`));
        changed.on('data', check);
        child.once('exit', exited);
        check();
      });
    const stageOf = (payload: Buffer): string | undefined => {
      try {
        return (
          doorbell.v1.Event.decode(doorbell.v1.Envelope.decode(payload).body).otaProgress?.stage ?? undefined
        );
      } catch {
        return undefined;
      }
    };
    return {
      ready: until(() => out.includes('received SUBACK'), 'its SUBACK'),
      async stopAfter(stage) {
        await until(() => payloads().some((p) => stageOf(p) === stage), `the ${stage} event`);
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        children.delete(child);
        return payloads();
      },
    };
  };

  it('pushes v2: the device restarts into it, self-tests, commits, and reports every stage', async () => {
    const sub = subscribe();
    await sub.ready;
    // The README's command as written: the hub's state and broker from the environment.
    assert.ok(broker);
    const pushDoc = docCommand('README.md', 'npm run doorbell-hub -- ota push');
    const pushed = runDocCommand(
      withValues(pushDoc, {
        'dist/bundles/open-doorbell-0.2.0-rpi-arm64.bundle': bundles.v2 ?? '',
        'front-door': DEVICE,
      }),
      { env: { DOORBELL_HUB_STATE: hubDir, DOORBELL_HUB_BROKER: broker.url } },
    );
    const code = await pushed.exited(120_000);
    const r: Run = { code, stdout: pushed.stdout, stderr: pushed.stderr };
    assert.equal(r.code, 0, fail('push v2 failed', r));
    for (const stage of ['begun', 'received', 'verified', 'written', 'switched', 'self-test', 'committed']) {
      assert.match(
        r.stdout,
        new RegExp(`ota ${DEVICE}: ${stage} 0\\.2\\.0|ota ${DEVICE}: ${stage}`),
        fail(stage, r),
      );
    }
    assert.match(r.stdout, /committed 0\.2\.0 \(security counter 2\)/);
    assert.match(r.stderr, /sent 100% /, 'plain progress lines without a terminal');
    const state = await readBootState(root);
    assert.equal(state.committedCounter, 2);
    assert.equal(state.trial, null);
    assert.equal(await readlink(join(root, 'slots', 'current')), state.committed);
    assert.ok(supervisor);
    assert.deepEqual(
      supervisor.boots.map((b) => `${b.version}/${b.mode}`),
      ['0.1.0/committed', '0.2.0/trial'],
    );
    assert.equal(supervisor.exits[0], 75, 'v1 exits 75 after the switch');

    // The events as the broker delivered them, signatures checked by openssl (an independent oracle).
    const payloads = await sub.stopAfter('committed');
    const pem = join(dir, 'device-pub.pem');
    await writeFile(pem, publicKeyToPem(deviceKey));
    const stages: string[] = [];
    for (const [i, payload] of payloads.entries()) {
      const env = doorbell.v1.Envelope.decode(payload);
      const event = doorbell.v1.Event.decode(env.body);
      const stage = event.otaProgress?.stage;
      if (!stage) continue;
      stages.push(stage);
      if (!['switched', 'self-test', 'committed'].includes(stage)) continue;
      const body = join(dir, `evt-${i}.bin`);
      const sig = join(dir, `evt-${i}.sig`);
      await writeFile(body, env.body);
      await writeFile(sig, env.signature);
      const ok = await new Promise<Run>((res) =>
        execFile(
          'openssl',
          ['pkeyutl', '-verify', '-pubin', '-inkey', pem, '-rawin', '-in', body, '-sigfile', sig],
          (err, stdout, stderr) => res({ code: err ? 1 : 0, stdout, stderr }),
        ),
      );
      assert.equal(ok.code, 0, `openssl refused the ${stage} event: ${ok.stderr}`);
      assert.match(ok.stdout, /Signature Verified Successfully/);
    }
    for (const s of ['switched', 'self-test', 'committed'])
      assert.ok(stages.includes(s), `${s} in ${stages}`);

    const status = await hub(['ota', 'status', DEVICE]).done;
    assert.equal(status.code, 0, fail('status', status));
    const shown = JSON.parse(status.stdout.trim().split('\n').at(-1) ?? '{}') as {
      otaState?: Record<string, unknown>;
    };
    assert.equal(shown.otaState?.runningVersion, '0.2.0');
    assert.equal(shown.otaState?.committedVersion, '0.2.0');
    assert.equal(shown.otaState?.committedSecurityCounter, 2);
  });

  it('refuses a downgrade, a tampered, wrong-hardware, expired or foreign-key bundle before any slot write', async () => {
    const before = await snapshot(join(root, 'slots'));
    const cases: [string, RegExp][] = [
      ['downgrade', /downgrade: bundle security counter 1 is below the committed 2/],
      ['tampered', /hash-mismatch/],
      ['wronghw', /wrong-hardware/],
      ['expired', /expired/],
      ['otherkey', /unknown-key/],
    ];
    for (const [name, why] of cases) {
      const r = await push(bundles[name] ?? '');
      assert.equal(r.code, 1, fail(name, r));
      assert.match(r.stdout, /UPDATE_REFUSED/, fail(name, r));
      assert.match(r.stdout, why, fail(name, r));
      assert.match(r.stdout, new RegExp(`ota ${DEVICE}: refused`), fail(`${name}: no refused event`, r));
      assert.deepEqual(await snapshot(join(root, 'slots')), before, `${name} changed the slots`);
    }
    // The header is checked as soon as it arrives: the wrong-hardware bundle was refused at its first chunk.
    const audit = await readDeviceAudit(join(root, 'state'), DEVICE, verifyKeyOf(deviceKey));
    const refusals = audit.entries.filter((e) => e.event === 'ota.refused');
    assert.equal(refusals.length, cases.length);
    const hw = refusals.find((e) => String(e.data.detail).startsWith('wrong-hardware'));
    assert.ok(hw && Number(hw.data.nextOffset) <= 12 * 1024, JSON.stringify(hw));
  });

  it('resumes an interrupted push where it stopped; a trial that cannot reach the broker rolls back to v2', async () => {
    assert.ok(supervisor);
    const first = hub(['ota', 'push', bundles.v3bad ?? '', DEVICE]);
    // Killed as soon as its progress says a third or more was sent.
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      const onData = (d: Buffer): void => {
        stderr += d.toString();
        if (!/sent [3-9]\d% /.test(stderr)) return;
        first.child.stderr?.off('data', onData);
        resolve();
      };
      first.child.stderr?.on('data', onData);
      first.done.then(
        (r) => reject(new Error(fail('the first push ended before a third was sent', r))),
        reject,
      );
    });
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.notEqual(killed.code, 0, fail('the first push was not interrupted', killed));
    const bootsBefore = supervisor.boots.length;
    const exitsBefore = supervisor.exits.length;

    const r = await push(bundles.v3bad ?? '', 40_000);
    const resumed = /resuming at byte (\d+) of (\d+)/.exec(r.stdout);
    assert.ok(resumed, fail('did not resume', r));
    assert.ok(Number(resumed[1]) > 0 && Number(resumed[1]) < Number(resumed[2]));
    assert.doesNotMatch(r.stderr, /sent 0% /, 'nothing was sent again from 0');
    assert.equal(r.code, 1, fail('the bad update did not fail', r));
    assert.match(r.stdout, new RegExp(`ota ${DEVICE}: rolled-back 0\\.3\\.0`), fail('no rolled-back', r));
    assert.match(r.stdout, /health check failed/);

    const boots = supervisor.boots.slice(bootsBefore).map((b) => `${b.version}/${b.mode}`);
    assert.deepEqual(boots.slice(0, 2), ['0.3.0/trial', '0.2.0/committed'], JSON.stringify(supervisor.boots));
    // v2 exits 75 after the switch; v3 rolls itself back and exits 75 too.
    assert.deepEqual(supervisor.exits.slice(exitsBefore, exitsBefore + 2), [75, 75]);
    const state = await readBootState(root);
    assert.equal(state.committedCounter, 2);
    assert.equal(state.trial, null);
    // v2 is online again and answers.
    const status = await hub(['ota', 'status', DEVICE]).done;
    assert.equal(status.code, 0, fail('status after rollback', status));
    assert.match(status.stdout, /"runningVersion":"0\.2\.0"/);
  });

  it('a trial that crashes at every start is rolled back by the boot selector after 3 attempts; v2 reports it', async () => {
    assert.ok(supervisor);
    const bootsBefore = supervisor.boots.length;
    const r = await push(bundles.v4crash ?? '', 40_000);
    assert.equal(r.code, 1, fail('the crashing update did not fail', r));
    assert.match(r.stdout, new RegExp(`ota ${DEVICE}: rolled-back 0\\.4\\.0`), fail('no rolled-back', r));
    assert.match(r.stdout, /never passed its health check/);
    assert.deepEqual(
      supervisor.boots.slice(bootsBefore).map((b) => `${b.version}/${b.mode}`),
      ['0.4.0/trial', '0.4.0/trial', '0.4.0/trial', '0.2.0/rolled-back'],
    );
    const state = await readBootState(root);
    assert.equal(state.committedCounter, 2);
    assert.equal(state.trial, null);
  });

  it('the audit log recorded every step under a signed checkpoint; a modified or removed entry contradicts it', async () => {
    const stateDir = join(root, 'state');
    let audit = await readDeviceAudit(stateDir, DEVICE, verifyKeyOf(deviceKey));
    await waitFor(
      async () => {
        audit = await readDeviceAudit(stateDir, DEVICE, verifyKeyOf(deviceKey));
        return audit.checkedSize === audit.lines.length;
      },
      'a checkpoint covering every entry',
      10_000,
    );
    assert.deepEqual(audit.problems, []);
    const events = new Set(audit.entries.map((e) => e.event));
    for (const e of [
      'begun',
      'received',
      'verified',
      'written',
      'switched',
      'self-test',
      'committed',
      'refused',
      'rolled-back',
    ]) {
      assert.ok(events.has(`ota.${e}`), `ota.${e} in ${[...events]}`);
    }
    assert.ok(
      audit.entries.some((e) => e.event === 'ota.begun' && /^resumed at [1-9]/.test(String(e.data.detail))),
    );
    const signed = [{ note: audit.checkpoint ?? '', seenAtMs: 0 }];
    const check = (lines: string[]) =>
      checkAuditLog(
        lines,
        signed,
        auditVerifier(DEVICE, verifyKeyOf(deviceKey)),
        auditOrigin(DEVICE, deviceKey.keyId),
      );
    const modified = [...audit.lines];
    modified[3] = (modified[3] ?? '').replace('"ota.', '"ota.x');
    assert.match(check(modified).problems.join(), /^rewritten/);
    assert.match(check(audit.lines.slice(0, -1)).problems.join(), /^truncated/);
  });
});
