// MQTT client ids containing `#`, `+` or `/` on the locked-down broker.
//
// Mosquitto 2.0.11 itself accepts such ids at CONNECT, and with
// `use_identity_as_username` it skips the basic-auth check, so no option of its
// own refuses them. The generated configuration therefore loads the
// doorbell_auth plugin (broker/plugin) instead: in Mosquitto's basic-auth
// check it refuses an empty client id or one containing `#`, `+` or `/`
// (CONNACK "not authorized": 135 in MQTT 5, 5 in MQTT 3.1.1), and it makes the
// certificate's CN the username, whatever username the client sent.
// Both mqtt.js and the Debian `mosquitto_pub` are used as clients. That a
// client id must also be one the certificate owns is client-id-binding.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { topicsFor } from '../proto/index.js';
import { type RunningTlsBroker, startTlsMosquitto } from '../test-support/tls-mosquitto.js';
import {
  connectArgs,
  mosquittoPub,
  mqttOptions,
  pubackReason,
  Recorder,
  runMosquittoClient,
  tryConnect,
} from './broker-test-clients.js';
import { issueLeaf } from './certs.js';

const A = topicsFor('dev-a');
const B = topicsFor('dev-b');
const NOT_AUTHORIZED = 135;
const DANGEROUS = ['a#b', 'a+b', 'a/b', '#', '+'];

describe('client ids with #, + or / are refused at CONNECT', () => {
  let broker: RunningTlsBroker;
  let hub: Recorder;
  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['dev-a', 'dev-b'] });
    hub = await Recorder.connect(broker.url, broker.hubTls(), `hub:test-${process.pid}`);
    await hub.subscribe(['doorbell/v1/+/evt']);
  });
  after(async () => {
    await hub?.end();
    await broker?.stop();
  });

  for (const clientId of DANGEROUS) {
    test(`client id ${JSON.stringify(clientId)}: CONNACK not authorized (mosquitto_pub, MQTT 5 and 3.1.1)`, async () => {
      const pub = await mosquittoPub(
        broker.port,
        broker.deviceTls('dev-a'),
        clientId,
        A.evt,
        `as ${clientId}`,
      );
      assert.notEqual(pub.code, 0, `${pub.stdout}${pub.stderr}`);
      assert.match(pub.stdout, /received CONNACK \(135\)/, `${pub.stdout}${pub.stderr}`);
      assert.doesNotMatch(pub.stdout, /sending PUBLISH/, pub.stdout);
      assert.match(pub.stderr, /not authori[sz]ed/i, pub.stderr);

      const args = connectArgs(broker.port, broker.deviceTls('dev-a'), clientId);
      args[args.indexOf('mqttv5')] = 'mqttv311';
      const v311 = await runMosquittoClient('mosquitto_pub', [
        ...args,
        '-d',
        '-q',
        '1',
        '-t',
        A.evt,
        '-m',
        'x',
      ]);
      assert.notEqual(v311.code, 0, `${v311.stdout}${v311.stderr}`);
      assert.match(v311.stdout, /received CONNACK \(5\)/, `${v311.stdout}${v311.stderr}`);

      assert.match(
        broker.output(),
        new RegExp(`doorbell_auth: refused .*client id "${clientId.replace(/[#+/]/g, '\\$&')}" contains`),
      );
      assert.ok(!hub.received.some((m) => m.payload === `as ${clientId}`), 'the publish was delivered');
    });

    test(`client id ${JSON.stringify(clientId)}: mqtt.js gets no CONNACK success`, async () => {
      const result = await tryConnect(broker.url, mqttOptions(broker.deviceTls('dev-a'), clientId));
      if (result.client) {
        await result.client.endAsync(true);
        assert.fail(`mqtt.js connected as ${JSON.stringify(clientId)}`);
      }
      assert.equal((result.error as Error & { code?: number }).code, NOT_AUTHORIZED, result.error.message);
    });
  }

  test("the hub's certificate does not make such an id acceptable", async () => {
    const pub = await mosquittoPub(broker.port, broker.hubTls(), 'hub#1', A.cmd, 'x');
    assert.match(pub.stdout, /received CONNACK \(135\)/, `${pub.stdout}${pub.stderr}`);
    const result = await tryConnect(broker.url, mqttOptions(broker.hubTls(), 'hub/1'));
    if (result.client) {
      await result.client.endAsync(true);
      assert.fail('mqtt.js connected as hub/1');
    }
    assert.equal((result.error as Error & { code?: number }).code, NOT_AUTHORIZED, result.error.message);
  });

  test('a normal client id still connects and publishes on its own topics (both clients)', async () => {
    const pub = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.evt, 'normal id');
    assert.equal(pub.code, 0, `${pub.stdout}${pub.stderr}`);
    assert.match(pub.stdout, /received CONNACK \(0\)/, pub.stdout);
    assert.notEqual(pubackReason(pub), NOT_AUTHORIZED, pub.stdout);
    await hub.waitFor((m) => m.payload === 'normal id', "A's event");

    const device = await Recorder.connect(broker.url, broker.deviceTls('dev-a'), 'dev-a');
    try {
      await device.client.publishAsync(A.evt, 'normal id mqtt.js', { qos: 1 });
      await hub.waitFor((m) => m.payload === 'normal id mqtt.js', "A's event from mqtt.js");
    } finally {
      await device.end();
    }
  });

  test('a home-CA certificate whose CN is not a valid id is refused', async () => {
    for (const cn of ['Front_Door', 'ab']) {
      const leaf = await issueLeaf(
        broker.files.ca,
        broker.files.dir,
        { stem: `bad-cn-${cn}`, commonName: cn, usage: 'client' },
        1,
      );
      const tls = { ca: broker.files.ca.cert, ...leaf };
      const pub = await mosquittoPub(broker.port, tls, 'bad-cn', A.evt, 'x');
      assert.match(pub.stdout, /received CONNACK \(135\)/, `${cn}: ${pub.stdout}${pub.stderr}`);
      const result = await tryConnect(broker.url, mqttOptions(tls, 'bad-cn'));
      if (result.client) {
        await result.client.endAsync(true);
        assert.fail(`mqtt.js connected with CN ${cn}`);
      }
    }
    assert.match(
      broker.output(),
      /doorbell_auth: refused .*"bad-cn"\): certificate subject CN missing or not a valid id/,
    );
  });

  test("the username a client sends is replaced by its certificate's CN", async () => {
    // Device A claiming to be the hub (or device B) is still only device A.
    for (const claimed of ['hub', 'dev-b']) {
      const extra = ['-u', claimed, '-P', 'anything'];
      const own = await mosquittoPub(
        broker.port,
        broker.deviceTls('dev-a'),
        'dev-a',
        A.evt,
        `own as ${claimed}`,
        extra,
      );
      assert.match(own.stdout, /received CONNACK \(0\)/, `${own.stdout}${own.stderr}`);
      assert.notEqual(pubackReason(own), NOT_AUTHORIZED, own.stdout);
      await hub.waitFor((m) => m.payload === `own as ${claimed}`, `A's event sent with username ${claimed}`);
      const other = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', B.evt, 'x', extra);
      assert.equal(pubackReason(other), NOT_AUTHORIZED, `B's evt with username ${claimed}: ${other.stdout}`);
      const cmd = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', B.cmd, 'x', extra);
      assert.equal(pubackReason(cmd), NOT_AUTHORIZED, `B's cmd with username ${claimed}: ${cmd.stdout}`);
    }
  });
});
