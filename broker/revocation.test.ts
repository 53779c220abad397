// Revoking a doorbell's certificate (a lost or discarded board) on the
// locked-down broker: `make-broker-config --revoke` adds it to the home CA's CRL,
// which Mosquitto loads as `crlfile` at start and on SIGHUP. A revoked
// certificate fails the TLS handshake; a revoked board still connected when
// Mosquitto reloads is disconnected by the doorbell_auth plugin, which re-reads
// the same CRL. `openssl`, `mosquitto_pub` and mqtt.js are the clients.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { topicsFor } from '../proto/index.js';
import { type RunningTlsBroker, startTlsMosquitto } from '../test-support/tls-mosquitto.js';
import {
  mosquittoPub,
  mqttOptions,
  pubackReason,
  Recorder,
  type TlsFiles,
  tryConnect,
} from './broker-test-clients.js';
import { openssl } from './certs.js';

const A = topicsFor('dev-a');
const B = topicsFor('dev-b');
const CLI = resolve(import.meta.dirname, 'make-broker-config.ts');
const HUB_WATCH_ID = 'hub:watch-0123456789abcdef';
const WEEK_S = 7 * 24 * 3600;

/** `openssl s_client` through a TLS 1.2 handshake with `tls`; its stdin is empty, so it ends after the handshake. */
function sClient(port: number, tls: Required<TlsFiles>): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-tls1_2',
        '-CAfile',
        tls.ca,
        '-cert',
        tls.cert,
        '-key',
        tls.key,
        '-verify_return_error',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.once('exit', (code) => done({ code, output }));
  });
}

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    execFile(command, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, output: stdout + stderr }),
    );
  });
}

function revokeCli(
  dir: string,
  deviceId: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, '--out', dir, '--revoke', deviceId],
      { encoding: 'utf8', timeout: 60_000 },
      (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

/** Expects a TLS handshake with `tls` to fail: no CONNACK, no connection. */
async function refusedAtHandshake(broker: RunningTlsBroker, tls: Required<TlsFiles>, clientId: string) {
  const pub = await mosquittoPub(broker.port, tls, clientId, topicsFor(clientId).evt, 'from a revoked board');
  assert.notEqual(pub.code, 0, `${pub.stdout}${pub.stderr}`);
  assert.doesNotMatch(pub.stdout, /received CONNACK/, pub.stdout);
  const result = await tryConnect(broker.url, mqttOptions(tls, clientId));
  if (result.client) {
    await result.client.endAsync(true);
    assert.fail(`mqtt.js connected with the revoked certificate of ${clientId}`);
  }
  const s = await sClient(broker.port, tls);
  assert.match(s.output, /alert certificate revoked/, s.output);
}

describe('revoking a doorbell certificate', () => {
  let broker: RunningTlsBroker;
  const recorders: Recorder[] = [];
  const record = async (
    tls: TlsFiles,
    clientId: string,
    topics: string[],
    overrides: Parameters<typeof Recorder.connect>[3] = {},
  ): Promise<Recorder> => {
    const r = await Recorder.connect(broker.url, tls, clientId, overrides);
    recorders.push(r);
    if (topics.length > 0) await r.subscribe(topics);
    return r;
  };

  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['dev-a', 'dev-b', 'dev-c'], revoked: ['dev-c'] });
  });
  after(async () => {
    await Promise.allSettled(recorders.map((r) => r.end()));
    await broker?.stop();
  });

  test('the CRL is signed by the home CA and lists exactly the revoked certificate (openssl crl, openssl verify -crl_check)', async () => {
    const { ca, crl } = broker.files;
    const signature = await run('openssl', ['crl', '-in', crl, '-CAfile', ca.cert, '-noout']);
    assert.equal(signature.code, 0, signature.output);
    assert.match(signature.output, /verify OK/);
    const text = await openssl(['crl', '-in', crl, '-noout', '-text']);
    const serialOf = async (id: string) =>
      (await openssl(['x509', '-in', broker.deviceTls(id).cert, '-noout', '-serial']))
        .trim()
        .replace(/^serial=/, '');
    assert.ok(text.includes(`Serial Number: ${await serialOf('dev-c')}`), text);
    assert.ok(!text.includes(await serialOf('dev-a')), text);
    const verify = (id: string) =>
      openssl(['verify', '-crl_check', '-CRLfile', crl, '-CAfile', ca.cert, broker.deviceTls(id).cert]).then(
        (out) => out,
        (err: Error) => err.message,
      );
    assert.match(await verify('dev-a'), /: OK/);
    assert.match(await verify('dev-c'), /certificate revoked/);
  });

  test('a revoked device certificate is refused at the TLS handshake while an unrevoked one still connects (mosquitto_pub, mqtt.js, openssl s_client)', async () => {
    await refusedAtHandshake(broker, broker.deviceTls('dev-c'), 'dev-c');
    const pub = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.evt, 'unrevoked');
    assert.match(pub.stdout, /received CONNACK \(0\)/, `${pub.stdout}${pub.stderr}`);
    const s = await sClient(broker.port, broker.deviceTls('dev-a'));
    assert.doesNotMatch(s.output, /alert/, s.output);
    assert.match(s.output, /Verify return code: 0 \(ok\)/, s.output);
  });

  test('after --revoke and a reload (SIGHUP) the revoked board is disconnected and refused; other boards and the hub’s queued session stay', async () => {
    // The hub is away with a persistent session holding one of A's events.
    const persistent = { clean: false, properties: { sessionExpiryInterval: WEEK_S } };
    const watch = await record(broker.hubTls(), HUB_WATCH_ID, ['doorbell/v1/+/evt'], persistent);
    await watch.end();
    const queued = await mosquittoPub(
      broker.port,
      broker.deviceTls('dev-a'),
      'dev-a',
      A.evt,
      'queued-before-reload',
    );
    assert.equal(pubackReason(queued), 0, queued.stdout);

    const a = await record(broker.deviceTls('dev-a'), 'dev-a', [A.cmd]);
    const b = await record(broker.deviceTls('dev-b'), 'dev-b', [B.cmd]);

    const revoked = await revokeCli(broker.files.dir, 'dev-b');
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /^revoked: device dev-b, certificate serial [0-9A-F]+$/m);
    assert.match(revoked.stdout, /reload Mosquitto/);
    broker.reload();

    await b.waitClosed('the revoked board dev-b');
    assert.match(
      broker.output(),
      /doorbell_auth: refused .*\(client id "dev-b"\): certificate CN "dev-b" is revoked/,
    );
    await refusedAtHandshake(broker, broker.deviceTls('dev-b'), 'dev-b');

    const hub = await record(broker.hubTls(), `hub:test-${process.pid}`, []);
    await hub.client.publishAsync(A.cmd, 'a-still-here', { qos: 1 });
    await a.waitFor((m) => m.payload === 'a-still-here', "the hub's command at A after the reload");
    assert.equal(a.closed, false, 'A was disconnected by the reload');

    const back = await record(broker.hubTls(), HUB_WATCH_ID, [], persistent);
    assert.equal(back.sessionPresent, true, "the hub's session did not survive the reload");
    await back.waitFor((m) => m.payload === 'queued-before-reload', 'the event queued before the reload');
    // Refusing a session whose client is away (it has no certificate to check) would
    // make Mosquitto disconnect it again and list it twice for expiry.
    assert.doesNotMatch(
      broker.output(),
      new RegExp(`doorbell_auth: refused .*client id "${HUB_WATCH_ID}"`),
      "the reload refused the hub's session while the hub was away",
    );
  });

  test('--revoke twice says so and keeps the CRL; --revoke of an unknown device fails', async () => {
    const again = await revokeCli(broker.files.dir, 'dev-b');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^already revoked: device dev-b/m);
    const unknown = await revokeCli(broker.files.dir, 'dev-z');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no certificate for device dev-z/);
    const bad = await revokeCli(broker.files.dir, 'Dev/B');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid device id/);
  });
});
