import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../common/free-port.js';
import { MAX_DATA_ENVELOPE_BYTES, MAX_ENVELOPE_BYTES } from '../proto/index.js';
import { openssl } from './certs.js';
import { launchMosquitto } from './local-mosquitto.js';
import { type BrokerConfigFiles, makeBrokerConfig } from './make-broker-config.js';

const run = promisify(execFile);
const CLI = resolve(import.meta.dirname, 'make-broker-config.ts');

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { encoding: 'utf8', timeout: 60_000 },
      (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('make-broker-config', () => {
  let dir: string;
  let files: BrokerConfigFiles;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'doorbell-broker-config-'));
    files = await makeBrokerConfig({ outDir: join(dir, 'out'), deviceIds: ['front-door', 'back-door'] });
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('every private key is mode 0600, except that the server key is also readable by the Mosquitto group (0640) when made as root', async () => {
    const keys = [files.ca.key, files.hub.key, ...[...files.devices.values()].map((d) => d.key)];
    assert.equal(keys.length, 4);
    for (const key of keys) assert.equal((await stat(key)).mode & 0o777, 0o600, key);
    const server = await stat(files.server.key);
    if (process.getuid?.() === 0) {
      const gid = Number((await run('id', ['-g', 'mosquitto'])).stdout.trim());
      assert.deepEqual([server.mode & 0o777, server.uid, server.gid], [0o640, 0, gid]);
      assert.deepEqual(files.serverKeyAccess, { group: 'mosquitto' });
    } else {
      assert.equal(server.mode & 0o777, 0o600);
      assert.deepEqual(files.serverKeyAccess, {
        step: `chgrp mosquitto ${files.server.key} && chmod 0640 ${files.server.key}`,
      });
    }
  });

  test('the start command it prints works as root: Mosquitto drops to its own user and still reads its key', async () => {
    const out = join(dir, 'as-printed');
    const port = await freePort();
    await chmod(dir, 0o755); // Mosquitto's user must reach the files, as under /etc
    const made = await runCli(['--out', out, '--device', 'front-door', '--port', String(port)]);
    assert.equal(made.code, 0, made.stderr);
    const steps = made.stdout.split('\n');
    const step = steps.find((l) => l.startsWith('before starting Mosquitto as root'));
    if (process.getuid?.() !== 0) {
      assert.ok(step, 'without root it says what to run');
      return;
    }
    assert.equal(step, undefined, 'nothing left to do by hand');
    assert.match(made.stdout, /server\.key, readable by group mosquitto\)/);
    const start = steps.find((l) => l.startsWith('run: '))?.slice('run: '.length) ?? '';
    assert.equal(start, `mosquitto -c ${join(out, 'mosquitto.conf')}`);
    const conf = await readFile(join(out, 'mosquitto.conf'), 'utf8');
    assert.doesNotMatch(conf, /^user /m, 'Mosquitto drops to its default user, mosquitto');
    const broker = await launchMosquitto({
      confPath: join(out, 'mosquitto.conf'),
      port,
      url: `mqtts://127.0.0.1:${port}`,
      cleanupDir: out,
    });
    try {
      // A TLS handshake with the broker's key proves Mosquitto read it after dropping privileges.
      const shown = await new Promise<string>((done, fail) => {
        const client = execFile(
          'openssl',
          ['s_client', '-connect', `127.0.0.1:${port}`, '-brief', '-CAfile', join(out, 'ca.crt')].concat([
            '-cert',
            join(out, 'hub-hub.crt'),
            '-key',
            join(out, 'hub-hub.key'),
          ]),
          { encoding: 'utf8', timeout: 20_000 },
          (err, stdout, stderr) =>
            err ? fail(new Error(`${stderr}\n${broker.output()}`)) : done(stdout + stderr),
        );
        client.stdin?.end();
      });
      assert.match(shown, /CONNECTION ESTABLISHED/);
      assert.match(shown, /Verification: OK/);
    } finally {
      await broker.stop();
    }
  });

  test('certificates chain to the CA, with CN = device id or hub name (openssl verify)', async () => {
    const leaves = [files.server, files.hub, ...files.devices.values()].map((f) => f.cert);
    const verified = await openssl(['verify', '-CAfile', files.ca.cert, ...leaves]);
    for (const leaf of leaves) assert.ok(verified.includes(`${leaf}: OK`), verified);
    for (const [id, device] of files.devices) {
      assert.match(
        await openssl(['x509', '-in', device.cert, '-noout', '-subject']),
        new RegExp(`CN ?= ?${id}\\n`),
      );
    }
    assert.match(await openssl(['x509', '-in', files.hub.cert, '-noout', '-subject']), /CN ?= ?hub\n/);
    const server = await openssl(['x509', '-in', files.server.cert, '-noout', '-ext', 'subjectAltName']);
    assert.match(server, /DNS:localhost, IP Address:127\.0\.0\.1/);
  });

  test('the config is TLS-only with certificate identity; the ACL confines each device', async () => {
    const conf = (await readFile(files.conf, 'utf8')).split('\n');
    for (const line of [
      'allow_anonymous false',
      'persistence false',
      'set_tcp_nodelay true',
      'listener 8883 127.0.0.1',
      'require_certificate true',
      `plugin ${files.plugin}`,
      'plugin_opt_hub_name hub',
      `plugin_opt_crl_file ${files.crl}`,
      `crlfile ${files.crl}`,
      `acl_file ${files.acl}`,
      // Sized from the protocol's envelope caps, not hard-coded: the data topic's globally,
      // every other topic's by the plugin.
      `message_size_limit ${MAX_DATA_ENVELOPE_BYTES}`,
      `max_packet_size ${MAX_DATA_ENVELOPE_BYTES + 1024}`,
      `plugin_opt_message_limit ${MAX_ENVELOPE_BYTES}`,
    ]) {
      assert.ok(conf.includes(line), `missing "${line}"`);
    }
    // With use_identity_as_username Mosquitto 2.0 skips basic auth, and so the plugin.
    assert.ok(!conf.some((l) => l.startsWith('use_identity_as_username')), 'no use_identity_as_username');
    assert.ok(files.plugin.endsWith('/broker/plugin/build/doorbell_auth.so'), files.plugin);
    assert.equal(conf.filter((l) => l.startsWith('listener ')).length, 1, 'exactly one listener');
    const acl = (await readFile(files.acl, 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(acl, [
      'user hub',
      'topic read doorbell/v1/+/evt',
      'topic read doorbell/v1/+/status',
      'topic read doorbell/v1/+/data',
      'topic write doorbell/v1/+/cmd',
      'pattern read doorbell/v1/%u/cmd',
      'pattern write doorbell/v1/%u/evt',
      'pattern write doorbell/v1/%u/status',
      'pattern write doorbell/v1/%u/data',
    ]);
  });

  test('a fresh set-up has an empty CRL signed by the CA, valid as long as the CA (openssl crl)', async () => {
    const text = await openssl(['crl', '-in', files.crl, '-noout', '-text']);
    assert.match(text, /No Revoked Certificates/);
    assert.match(text, /Issuer: CN ?= ?Open Doorbell home CA/);
    const nextUpdate = /Next Update: (.+)/.exec(text)?.[1];
    const caEnd = (await openssl(['x509', '-in', files.ca.cert, '-noout', '-enddate']))
      .trim()
      .replace(/^notAfter=/, '');
    assert.ok(nextUpdate, text);
    assert.ok(
      Date.parse(nextUpdate) >= Date.parse(caEnd),
      `CRL next update ${nextUpdate} before the CA ends ${caEnd}`,
    );
    assert.equal((await stat(files.crl)).mode & 0o777, 0o644, 'Mosquitto, running as its own user, reads it');
  });

  test('refuses to replace an existing CA key unless --force', async () => {
    const before = await readFile(files.ca.key);
    await assert.rejects(
      makeBrokerConfig({ outDir: files.dir, deviceIds: ['front-door'] }),
      /ca\.key exists: refusing to replace the CA \(pass --force/,
    );
    assert.deepEqual(await readFile(files.ca.key), before, 'CA key untouched');
    const cli = await runCli(['--out', files.dir, '--device', 'front-door']);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /refusing to replace the CA/);
    const forced = await runCli(['--out', files.dir, '--device', 'front-door', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notDeepEqual(await readFile(files.ca.key), before, 'a new CA key with --force');
  });

  for (const bad of ['a#b', 'door+bell', 'front/door', 'Front-Door', 'ab', '']) {
    test(`rejects the device id ${JSON.stringify(bad)} with a clear error`, async () => {
      const out = join(dir, `bad-${Buffer.from(bad).toString('hex')}`);
      await assert.rejects(
        makeBrokerConfig({ outDir: out, deviceIds: ['front-door', bad] }),
        (err: Error) => {
          assert.ok(err instanceof TypeError);
          assert.ok(err.message.includes(`invalid device id ${JSON.stringify(bad)}`), err.message);
          return true;
        },
      );
      const cli = await runCli(['--out', out, '--device', bad]);
      assert.equal(cli.code, 2);
      assert.match(cli.stderr, /error: invalid device id/);
      await assert.rejects(stat(join(out, 'ca.key')), 'nothing generated for a bad id');
    });
  }

  test('usage errors: missing --out or --device, unknown flag, hub name clashing with a device', async () => {
    for (const [args, message] of [
      [['--device', 'front-door'], /--out DIR is required/],
      [['--out', join(dir, 'u1')], /at least one --device is required/],
      [['--out', join(dir, 'u2'), '--device', 'front-door', '--bogus'], /unknown option '--bogus'/],
      [
        ['--out', join(dir, 'u3'), '--device', 'hub-1', '--hub', 'hub-1'],
        /hub name hub-1 is also a device id/,
      ],
      [
        ['--out', join(dir, 'u4'), '--device', 'front-door', '--port', 'x'],
        /--port must be a positive integer/,
      ],
      [['--out', join(dir, 'u5'), '--device', 'front-door', '--revoke', 'front-door'], /do not go together/],
    ] as const) {
      const cli = await runCli([...args]);
      assert.equal(cli.code, 2, `${args.join(' ')}: ${cli.stderr}`);
      assert.match(cli.stderr, message);
    }
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: make-broker-config --out DIR --device ID/);
  });
});
