import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { parseConfig } from '../firmware/config/load.js';
import { type RunningDoorbell, startDoorbell } from '../firmware/root.js';
import { loadSigningKey, publicKeyToText } from '../proto/index.js';
import { startBrokerTap } from '../test-support/broker-tap.js';
import { collect, runCli, spawnCli } from '../test-support/run-cli.js';
import { hubKeyPath } from './hub-state.js';

const run = promisify(execFile);

let dir: string;
let hubDir: string;
let broker: RunningBroker;
let device: RunningDoorbell | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-hub-cli-'));
  hubDir = join(dir, 'hub');
  broker = await startMosquitto();
});
after(async () => {
  await device?.stop();
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('doorbell-hub', () => {
  test('keygen creates a 0600 key once and prints its public key', async () => {
    const first = await runCli('hub/cli.ts', ['keygen', '--state-dir', hubDir]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^created hub key [0-9a-f]{16}/);
    assert.match(first.stdout, /public key: ed25519:[A-Za-z0-9_-]{43}/);
    assert.equal((await stat(hubKeyPath(hubDir))).mode & 0o777, 0o600);
    const again = await runCli('hub/cli.ts', ['keygen', '--state-dir', hubDir]);
    assert.match(again.stdout, /^existing hub key/);
    assert.equal(again.stdout.split('\n')[1], first.stdout.split('\n')[1], 'the same key');
  });

  test('add-device validates the id and the key, and never silently replaces a pin', async () => {
    const badId = await runCli('hub/cli.ts', [
      'add-device',
      'Front/Door',
      'ed25519:x',
      '--state-dir',
      hubDir,
    ]);
    assert.notEqual(badId.code, 0);
    assert.match(badId.stderr, /Front\/Door/);
    const badKey = await runCli('hub/cli.ts', ['add-device', 'front-door', 'rsa:abc', '--state-dir', hubDir]);
    assert.notEqual(badKey.code, 0);
    assert.match(badKey.stderr, /ed25519/);
  });

  test('a corrupt devices file is a clear error', async () => {
    const other = join(dir, 'corrupt-hub');
    await runCli('hub/cli.ts', ['keygen', '--state-dir', other]);
    await writeFile(join(other, 'devices.json'), '{"devices": {"x": 5}}');
    const r = await runCli('hub/cli.ts', ['devices', '--state-dir', other]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a valid devices file/);
  });

  test('usage errors exit 2 and say what was wrong', async () => {
    const r = await runCli('hub/cli.ts', ['ring', '--timeout-ms', 'soon', '--state-dir', hubDir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--timeout-ms/);
    const unknown = await runCli('hub/cli.ts', ['explode']);
    assert.equal(unknown.code, 2);
  });

  test('ring: a signed command to a live doorbell prints the ok result and exits 0', async () => {
    const hubKey = await loadSigningKey(hubKeyPath(hubDir));
    const config = parseConfig(
      {
        deviceId: 'front-door',
        stateDir: join(dir, 'device'),
        broker: { url: broker.url },
        trust: { hubKeys: [publicKeyToText(hubKey)] },
        hal: { backend: 'sim' },
      },
      'test',
    );
    device = await startDoorbell(config, { logger: silentLogger() });
    const pin = await runCli('hub/cli.ts', [
      'add-device',
      'front-door',
      publicKeyToText(device.key),
      '--state-dir',
      hubDir,
    ]);
    assert.equal(pin.code, 0, pin.stderr);

    const watch = spawnCli('hub/cli.ts', ['watch', '--json', '--broker', broker.url, '--state-dir', hubDir]);
    let seen = '';
    const waiters: Array<() => void> = [];
    watch.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      for (const w of waiters.splice(0)) w();
    });
    /** Resolves once the watch has printed a line matching `pattern`. */
    const printed = (pattern: RegExp): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (pattern.test(seen)) resolve();
          else waiters.push(check);
        };
        check();
      });
    const watched = collect(watch, 30_000);
    // The doorbell's retained status reaches the watch once it is subscribed.
    await printed(/"kind":"status"/);

    const r = await runCli('hub/cli.ts', [
      'ring',
      'front-door',
      '--broker',
      broker.url,
      '--state-dir',
      hubDir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { device: 'front-door', ok: true });
    assert.equal(device.hal.sim?.chimeHistory().filter((c) => c.on).length, 1);

    await printed(/"kind":"commandResult"/);
    watch.kill('SIGTERM');
    const lines = (await watched).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(
      lines.some((l) => l.kind === 'commandResult' && l.deviceId === 'front-door'),
      JSON.stringify(lines),
    );
    assert.ok(lines.some((l) => l.kind === 'status'));
  });

  test('ring: no answer in time exits 1 and names what timed out', async () => {
    await runCli('hub/cli.ts', [
      'add-device',
      'back-door',
      publicKeyToText(await loadSigningKey(hubKeyPath(hubDir))),
      '--state-dir',
      hubDir,
    ]);
    const r = await runCli('hub/cli.ts', [
      'ring',
      'back-door',
      '--broker',
      broker.url,
      '--state-dir',
      hubDir,
      '--timeout-ms',
      '800',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no result from back-door for ringChimeTest within 800 ms/);
  });

  test('ring: an unreachable broker exits 1 and says so', async () => {
    const r = await runCli('hub/cli.ts', [
      'ring',
      'front-door',
      '--broker',
      'mqtt://127.0.0.1:1',
      '--state-dir',
      hubDir,
      '--timeout-ms',
      '800',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the broker at mqtt:\/\/127\.0\.0\.1:1/);
  });
});

describe('doorbell-hub refuses an age secret key given as a footage recipient', () => {
  for (const command of ['pair', 'recipients'] as const) {
    test(`${command}: exit 2 naming the mistake, the secret not echoed, nothing published or created`, async () => {
      const identity = (await run('age-keygen', [])).stdout; // the real tool's secret key format
      const secret = /^AGE-SECRET-KEY-1[0-9A-Z]+$/m.exec(identity)?.[0];
      assert.ok(secret, identity);
      const state = join(dir, `secret-${command}`);
      const own = await startMosquitto(); // nothing else publishes on it
      const tap = await startBrokerTap(own.port);
      try {
        await tap.mark('before');
        const args =
          command === 'pair'
            ? ['pair', '--code', 'odb1:not-checked-first', '--recipient', secret]
            : ['recipients', 'front-door', '--recipient', secret];
        const r = await runCli('hub/cli.ts', [...args, '--broker', own.url, '--state-dir', state]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          /--recipient AGE-SECRET-KEY-1…: this is an age secret key; give the public key instead/,
        );
        assert.match(r.stderr, /age-keygen -y/);
        assert.match(r.stderr, /nothing was sent/);
        assert.ok(!(r.stdout + r.stderr).includes(secret.slice(16)), 'the secret is not echoed');
        await tap.mark('after');
        const between = tap.topics().filter((t) => !t.startsWith('tap/mark/'));
        assert.deepEqual(between, [], 'nothing was published');
        await assert.rejects(stat(state), 'no hub state (keys, counters) was created');
      } finally {
        await tap.stop();
        await own.stop();
      }
    });
  }
});

describe('doorbell-hub settings: init writes them, the environment and flags override them', () => {
  test('init saves the broker; commands use it; DOORBELL_HUB_BROKER and --broker take precedence', async () => {
    const config = join(dir, 'settings', 'hub.json');
    const env = { DOORBELL_HUB_CONFIG: config };
    const state = join(dir, 'settings-state');
    const init = await runCli(
      'hub/cli.ts',
      ['init', '--broker', 'mqtt://127.0.0.1:1', '--state-dir', state],
      30_000,
      env,
    );
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /^wrote \S+hub\.json: broker mqtt:\/\/127\.0\.0\.1:1;/);
    assert.equal((await stat(config)).mode & 0o777, 0o600);
    const again = await runCli(
      'hub/cli.ts',
      ['init', '--broker', broker.url, '--state-dir', state],
      30_000,
      env,
    );
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists: pass --force/);
    const key = publicKeyToText(await loadSigningKey(hubKeyPath(hubDir)));
    await runCli('hub/cli.ts', ['add-device', 'settings-door', key, '--state-dir', state], 30_000, env);
    // The file's broker (port 1: nothing listens) is what a plain command uses ...
    const fromFile = await runCli(
      'hub/cli.ts',
      ['status', 'settings-door', '--state-dir', state],
      30_000,
      env,
    );
    assert.match(fromFile.stderr, /cannot reach the broker at mqtt:\/\/127\.0\.0\.1:1: nothing listens/);
    // ... the environment overrides the file, and a flag overrides both.
    const fromEnv = await runCli('hub/cli.ts', ['status', 'settings-door', '--state-dir', state], 30_000, {
      ...env,
      DOORBELL_HUB_BROKER: 'mqtt://127.0.0.1:2',
    });
    assert.match(fromEnv.stderr, /cannot reach the broker at mqtt:\/\/127\.0\.0\.1:2:/);
    const fromFlag = await runCli(
      'hub/cli.ts',
      ['status', 'settings-door', '--state-dir', state, '--broker', 'mqtt://127.0.0.1:3'],
      30_000,
      { ...env, DOORBELL_HUB_BROKER: 'mqtt://127.0.0.1:2' },
    );
    assert.match(fromFlag.stderr, /cannot reach the broker at mqtt:\/\/127\.0\.0\.1:3:/);
  });

  test('a broken settings file is a clear error naming the file and the field', async () => {
    const config = join(dir, 'broken-hub.json');
    await writeFile(config, '{"broker": "http://hub.local"}');
    const r = await runCli('hub/cli.ts', ['devices', '--state-dir', join(dir, 'x')], 30_000, {
      DOORBELL_HUB_CONFIG: config,
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broken-hub\.json: broker: must look like mqtt:\/\/host:port/);
  });
});
