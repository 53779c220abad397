import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { freePort } from '../common/free-port.js';
import { generateSigningKey, publicKeyToText } from '../proto/index.js';
import { runCli } from '../test-support/run-cli.js';
import { type RunningTlsBroker, startTlsMosquitto } from '../test-support/tls-mosquitto.js';

/**
 * Each broker mistake a user makes, against real brokers: the hub gives up at once
 * (long before its 60 s timeout, whose message would say "within 60000 ms") and its
 * last line names the cause and the fix.
 */
let dir: string;
let tls: RunningTlsBroker;
let plain: RunningBroker;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-broker-errors-'));
  tls = await startTlsMosquitto({ deviceIds: ['front-door'] });
  plain = await startMosquitto();
  const pinned = await runCli('hub/cli.ts', [
    'add-device',
    'front-door',
    publicKeyToText(generateSigningKey()),
    '--state-dir',
    dir,
  ]);
  assert.equal(pinned.code, 0, pinned.stderr);
});
after(async () => {
  await tls?.stop();
  await plain?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function status(broker: string, ...tlsArgs: string[]) {
  const r = await runCli(
    'hub/cli.ts',
    ['status', 'front-door', '--broker', broker, '--state-dir', dir, '--timeout-ms', '60000', ...tlsArgs],
    90_000,
  );
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  assert.doesNotMatch(last, /within 60000 ms/, 'it gave up at once, not at the timeout');
  return last;
}

describe('doorbell-hub names why it cannot reach the broker, and stops at once', () => {
  test('a port nobody listens on: connection refused', async () => {
    const port = await freePort();
    assert.match(
      await status(`mqtt://127.0.0.1:${port}`),
      /cannot reach the broker at \S+: nothing listens on that port \(connection refused\); is the broker running/,
    );
  });

  test('a host name that does not resolve', async () => {
    assert.match(
      await status('mqtt://no-such-broker.invalid:1883'),
      /the broker's host name does not resolve \(E\w+\); check the host/,
    );
  });

  test('the TLS broker without --ca: its certificate is not trusted, pass --ca', async () => {
    assert.match(
      await status(`mqtts://127.0.0.1:${tls.port}`),
      /the broker's certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN\); pass --ca/,
    );
  });

  test('the TLS broker with --ca but no client certificate: pass --cert and --key', async () => {
    const hub = tls.hubTls();
    assert.match(
      await status(`mqtts://127.0.0.1:${tls.port}`, '--ca', hub.ca),
      /the broker requires a client certificate; pass --cert and --key/,
    );
  });

  test('mqtt:// on the TLS port: maybe a TLS port, use mqtts://', async () => {
    assert.match(
      await status(`mqtt://127.0.0.1:${tls.port}`),
      /closed the connection before answering CONNECT; this may be a TLS port: use mqtts:\/\//,
    );
  });

  test('mqtts:// on a plain port: maybe a plain port, use mqtt://', async () => {
    const hub = tls.hubTls();
    assert.match(
      await status(`mqtts://127.0.0.1:${plain.port}`, '--ca', hub.ca),
      /TLS handshake; this may be a plain MQTT port: use mqtt:\/\//,
    );
  });

  test("a doorbell's certificate used as the hub's: the broker refuses this client (not authorised)", async () => {
    const device = tls.deviceTls('front-door');
    assert.match(
      await status(
        `mqtts://127.0.0.1:${tls.port}`,
        '--ca',
        device.ca,
        '--cert',
        device.cert,
        '--key',
        device.key,
      ),
      /the broker refused this client: .*Not authorized; its access rules do not allow this certificate or client id/,
    );
  });
});
