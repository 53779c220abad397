// MQTT client ids containing `#`, `+` or `/` on the locked-down broker.
//
// What is true of Mosquitto 2.0.11 (and what these tests pin down): it does NOT
// refuse such client ids at CONNECT (CONNACK 0), and no configuration option
// makes it do so (`clientid_prefixes` only checks a prefix). What protects the
// topics is that identity comes from the certificate's CN (`%u`), never from
// the client id, and that Mosquitto denies every pattern-ACL check to a client
// whose id contains `+` or `#` ("ACL denying access to client with dangerous
// client id"). A `/` in a client id gets no special treatment.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { topicsFor } from '../../proto/index.js';
import { type RunningTlsBroker, startTlsMosquitto } from '../../test-support/tls-mosquitto.js';
import { mosquittoPub, mqttOptions, pubackReason, Recorder, tryConnect } from './broker-test-clients.js';

const A = topicsFor('dev-a');
const B = topicsFor('dev-b');
const NOT_AUTHORIZED = 135;

describe('client ids with #, + or /', () => {
  let broker: RunningTlsBroker;
  let hub: Recorder;
  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['dev-a', 'dev-b'] });
    hub = await Recorder.connect(broker.url, broker.hubTls(), `hub-${process.pid}`);
    await hub.subscribe(['doorbell/v1/+/evt']);
  });
  after(async () => {
    await hub?.end();
    await broker?.stop();
  });

  for (const clientId of ['a#b', 'a+b', 'a/b', '#', '+']) {
    test(`Mosquitto 2.0.11 accepts the CONNECT of client id ${JSON.stringify(clientId)} (it is not refused)`, async () => {
      const pub = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), clientId, A.evt, 'x');
      assert.match(pub.stdout, /received CONNACK \(0\)/, `${pub.stdout}${pub.stderr}`);
      const result = await tryConnect(broker.url, mqttOptions(broker.deviceTls('dev-a'), clientId));
      assert.ok(result.client, `mqtt.js: ${result.error?.message}`);
      await result.client.endAsync();
    });
  }

  for (const clientId of ['a#b', 'a+b']) {
    test(`a device connected as ${JSON.stringify(clientId)} is denied even its own topics`, async () => {
      const pub = await mosquittoPub(
        broker.port,
        broker.deviceTls('dev-a'),
        clientId,
        A.evt,
        `as ${clientId}`,
      );
      assert.equal(pubackReason(pub), NOT_AUTHORIZED, pub.stdout);
      // Reading: a message the hub sends to A's cmd is not delivered to it. The
      // SUBSCRIBE round trip after the hub's acknowledged publish flushes the
      // connection: a delivery would have been queued before the SUBACK.
      const device = await Recorder.connect(broker.url, broker.deviceTls('dev-a'), clientId);
      try {
        await device.subscribe([A.cmd]);
        await hub.client.publishAsync(A.cmd, `cmd for ${clientId}`, { qos: 1 });
        await device.subscribe([A.evt]);
        assert.deepEqual(device.received, []);
      } finally {
        await device.end();
      }
      await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.evt, `sentinel ${clientId}`);
      await hub.waitFor((m) => m.payload === `sentinel ${clientId}`, 'sentinel');
      assert.ok(!hub.received.some((m) => m.payload === `as ${clientId}`), 'the publish was delivered');
    });
  }

  test('with a "/" in its client id a device is still confined by its certificate CN', async () => {
    const tls = broker.deviceTls('dev-a');
    const own = await mosquittoPub(broker.port, tls, 'dev-b/x', A.evt, 'slash own');
    assert.notEqual(pubackReason(own), NOT_AUTHORIZED, own.stdout);
    await hub.waitFor((m) => m.payload === 'slash own', "A's event sent with a '/' client id");
    const other = await mosquittoPub(broker.port, tls, 'dev-b/x', B.evt, 'slash other');
    assert.equal(pubackReason(other), NOT_AUTHORIZED, other.stdout);
  });

  test("the hub's user ACL is checked before patterns: a '#' in its client id does not stop it", async () => {
    const pub = await mosquittoPub(broker.port, broker.hubTls(), 'hub#1', A.cmd, 'x');
    assert.notEqual(pubackReason(pub), NOT_AUTHORIZED, pub.stdout);
    assert.match(pub.stdout, /received PUBACK/);
  });
});
