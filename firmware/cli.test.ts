import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { connectWires } from '../hal/index.js';
import { doorbell, fingerprintOf, loadSigningKey, openEvent, parsePairingCode } from '../proto/index.js';
import { collect, runCli, spawnCli } from '../test-support/run-cli.js';
import { waitFor } from '../test-support/wait-for.js';
import { FIRMWARE_VERSION } from './version.js';

const run = promisify(execFile);
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the firmware version matches package.json', async () => {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  assert.equal(FIRMWARE_VERSION, pkg.version);
});

test('a bad config lists every problem with its path, exits 78 and starts nothing', async () => {
  const stateDir = join(dir, 'never-created');
  const config = join(dir, 'bad.json');
  await writeFile(
    config,
    JSON.stringify({
      deviceId: 'Bad/Id#',
      stateDir,
      broker: { url: 'http://example' },
      hal: { chime: { maxOnMs: 5000, mode: 'foghorn' } },
      surprise: true,
    }),
  );
  const r = await runCli('firmware/cli.ts', ['run', '--config', config]);
  assert.equal(r.code, 78, r.stderr);
  for (const path of ['deviceId', 'broker.url', 'hal.chime.maxOnMs', 'hal.chime.mode']) {
    assert.match(r.stderr, new RegExp(`- ${path.replace('.', '\\.')}:`), `mentions ${path}:\n${r.stderr}`);
  }
  assert.match(r.stderr, /surprise/);
  assert.match(r.stderr, /nothing was started/);
  assert.equal(existsSync(stateDir), false, 'no state directory was created');
});

test('a config that is not JSON, or missing, is a clear error', async () => {
  const config = join(dir, 'broken.json');
  await writeFile(config, '{ "deviceId": ');
  const broken = await runCli('firmware/cli.ts', ['run', '--config', config]);
  assert.equal(broken.code, 78);
  assert.match(broken.stderr, /not valid JSON/);
  const missing = await runCli('firmware/cli.ts', ['run', '--config', join(dir, 'nope.json')]);
  assert.equal(missing.code, 78);
  assert.match(missing.stderr, /cannot read: ENOENT/);
});

test('flags override the file and are validated too', async () => {
  const r = await runCli('firmware/cli.ts', [
    'run',
    '--hal',
    'gpio-magic',
    '--broker',
    'tcp://x',
    '--state-dir',
    join(dir, 'x'),
  ]);
  assert.equal(r.code, 78);
  assert.match(r.stderr, /hal\.backend/);
  assert.match(r.stderr, /broker\.url/);
  const unknown = await runCli('firmware/cli.ts', ['run', '--frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /frobnicate/);
});

test('identity creates a 0600 key once and prints the same identity afterwards', async () => {
  const stateDir = join(dir, 'identity');
  const first = await runCli('firmware/cli.ts', ['identity', '--state-dir', stateDir]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /device id: +doorbell-[0-9a-f]{8}/);
  assert.match(first.stdout, /public key: +ed25519:[A-Za-z0-9_-]{43}/);
  const key = await loadSigningKey(join(stateDir, 'identity.pem'));
  const code = /pairing code: +(\S+)/.exec(first.stdout)?.[1] ?? '';
  const parsed = parsePairingCode(code);
  assert.equal(parsed.fingerprint, fingerprintOf(key.publicRaw), 'the code pins this key');
  assert.equal((await stat(join(stateDir, 'pairing-secret'))).mode & 0o777, 0o600);
  assert.match(first.stdout, /[▀▄█]{10}/, 'a QR code in the terminal');
  const mode = (await stat(join(stateDir, 'identity.pem'))).mode & 0o777;
  assert.equal(mode, 0o600);
  const second = await runCli('firmware/cli.ts', ['identity', '--state-dir', stateDir]);
  assert.equal(second.stdout, first.stdout);
});

/** The retained status of `deviceId`, read by `mosquitto_sub` and verified with the device's key. */
async function retainedStatus(
  port: number,
  deviceId: string,
  stateDir: string,
  waitS = 5,
): Promise<number | null | undefined> {
  const topic = `doorbell/v1/${deviceId}/status`;
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-t',
    topic,
    '-C',
    '1',
    '-W',
    String(waitS),
    '-F',
    '%x',
  ];
  const { stdout } = await run('mosquitto_sub', args);
  const key = await loadSigningKey(join(stateDir, 'identity.pem'));
  const { event } = openEvent(Buffer.from(stdout.trim(), 'hex'), {
    deviceId,
    topic,
    nowMs: Date.now(),
    keys: new Map([[key.keyId, key]]),
  });
  return event.status?.state;
}

describe('the daemon as a process', () => {
  let broker: RunningBroker;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('run: a press over the sim wire socket rings; SIGTERM stops cleanly and leaves a signed OFFLINE status', async () => {
    const stateDir = join(dir, 'daemon');
    const child = spawnCli('firmware/cli.ts', [
      'run',
      '--broker',
      broker.url,
      '--state-dir',
      stateDir,
      '--hal',
      'sim',
      '--device-id',
      'porch',
    ]);
    const done = collect(child, 60_000);
    try {
      const socket = join(stateDir, 'sim-wires.sock');
      await waitFor(() => existsSync(socket), 'the daemon exposing its sim wires', 20_000, 50);
      const wires = await connectWires(socket);
      const chimes: boolean[] = [];
      // One pulse: the chime goes on, then off (its wire events are the signal, not a wait).
      const pulse = new Promise<void>((resolve) =>
        wires.onChime((on) => {
          chimes.push(on);
          if (!on) resolve();
        }),
      );
      await wires.press(80);
      await pulse;
      assert.deepEqual(chimes.slice(0, 2), [true, false], 'one chime pulse, on then off');
      await wires.close();
    } finally {
      child.kill('SIGTERM');
    }
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /"msg":"stopped"/);

    assert.equal(await retainedStatus(broker.port, 'porch', stateDir), doorbell.v1.Status.State.OFFLINE);
  });

  test('kill -9: the broker publishes the signed last will, a retained OFFLINE status', async () => {
    const stateDir = join(dir, 'killed');
    const child = spawnCli('firmware/cli.ts', [
      'run',
      '--broker',
      broker.url,
      '--state-dir',
      stateDir,
      '--device-id',
      'killed-door',
    ]);
    const done = collect(child, 60_000);
    // The identity exists once the daemon published its first status.
    assert.equal(
      await retainedStatus(broker.port, 'killed-door', stateDir, 20),
      doorbell.v1.Status.State.ONLINE,
    );
    child.kill('SIGKILL');
    await done;
    // Each check is a fresh subscriber reading the retained status.
    await waitFor(
      async () =>
        (await retainedStatus(broker.port, 'killed-door', stateDir)) === doorbell.v1.Status.State.OFFLINE,
      'the will replacing the retained ONLINE status',
      10_000,
      100,
    );
  });
});

test("a client certificate whose CN is not the device id is refused at start, naming both (openssl's certificate)", async () => {
  const key = join(dir, 'cn.key');
  const cert = join(dir, 'cn.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    '/CN=back-door',
    '-days',
    '1',
  ]);
  const config = join(dir, 'cn.json');
  await writeFile(
    config,
    JSON.stringify({
      deviceId: 'front-door',
      stateDir: join(dir, 'cn-state'),
      hal: { backend: 'sim' },
      broker: { url: 'mqtts://127.0.0.1:8883', ca: cert, cert, key },
    }),
  );
  const r = await runCli('firmware/cli.ts', ['run', '--config', config]);
  assert.equal(r.code, 78, r.stderr);
  assert.match(
    r.stderr,
    /broker\.cert \S+cn\.crt is for 'back-door', but this doorbell's deviceId is 'front-door'/,
  );
  assert.match(r.stderr, /device-front-door\.crt from make-broker-config/);
  assert.match(r.stderr, /nothing was started/);
  assert.ok(!existsSync(join(dir, 'cn-state', 'identity.pem')), 'nothing was created');
});
