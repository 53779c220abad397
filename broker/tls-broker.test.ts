// The generated locked-down configuration on a real Mosquitto: who may connect,
// and that each doorbell is confined to its own topics while the hub sees all.
//
// "Never delivered" is proven without timers: after the forbidden message, a
// permitted sentinel is sent on the same path; MQTT delivers in order, so once
// the sentinel has arrived, the forbidden message would have arrived before it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { type BrokerConfigFiles, makeBrokerConfig } from './make-broker-config.js';

const A = topicsFor('dev-a');
const B = topicsFor('dev-b');
const NOT_AUTHORIZED = 135;

let seq = 0;
/** A client id for a connection refused before CONNECT, where the id plays no part. */
const id = (name: string): string => `${name}-${process.pid}-${++seq}`;
/**
 * The client id a certificate may use (see client-id-binding.test.ts): a doorbell
 * its device id, the hub `hub:<suffix>` (unique here, as the hub's connections are).
 */
const own = (name: 'dev-a' | 'dev-b' | 'hub'): string =>
  name === 'hub' ? `hub:test-${process.pid}-${++seq}` : name;

describe('the locked-down broker', () => {
  let broker: RunningTlsBroker;
  let otherDir: string;
  let other: BrokerConfigFiles;
  const recorders: Recorder[] = [];
  const recorder = async (
    tls: TlsFiles,
    name: 'dev-a' | 'dev-b' | 'hub',
    topics: string[],
  ): Promise<Recorder> => {
    const r = await Recorder.connect(broker.url, tls, own(name));
    recorders.push(r);
    if (topics.length > 0) await r.subscribe(topics);
    return r;
  };

  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['dev-a', 'dev-b'] });
    otherDir = await mkdtemp(join(tmpdir(), 'doorbell-other-ca-'));
    other = await makeBrokerConfig({ outDir: otherDir, deviceIds: ['dev-a'] });
  });
  after(async () => {
    await Promise.allSettled(recorders.map((r) => r.end()));
    await broker?.stop();
    if (otherDir) await rm(otherDir, { recursive: true, force: true });
  });

  describe('who may connect', () => {
    test('control: a device with its own certificate connects (mosquitto_pub and mqtt.js)', async () => {
      const pub = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), own('dev-a'), A.evt, 'hello');
      assert.equal(pub.code, 0, `${pub.stdout}${pub.stderr}\n${broker.output()}`);
      assert.match(pub.stdout, /received CONNACK \(0\)/);
      const result = await tryConnect(broker.url, mqttOptions(broker.deviceTls('dev-a'), own('dev-a')));
      assert.ok(result.client, `mqtt.js could not connect: ${result.error?.message}`);
      await result.client.endAsync();
    });

    test('a client without a certificate is refused', async () => {
      const noCert = { ca: broker.files.ca.cert };
      const pub = await mosquittoPub(broker.port, noCert, id('anon'), A.evt, 'x');
      assert.notEqual(pub.code, 0, `mosquitto_pub without a certificate succeeded:\n${pub.stdout}`);
      assert.doesNotMatch(pub.stdout, /received CONNACK/);
      const result = await tryConnect(broker.url, mqttOptions(noCert, id('anon')));
      if (result.client) await result.client.endAsync(true);
      assert.ok(result.error, 'mqtt.js without a certificate connected');
    });

    test('a client with a certificate from another CA is refused', async () => {
      const foreign = { ca: broker.files.ca.cert, ...pick(other.devices.get('dev-a')) };
      const pub = await mosquittoPub(broker.port, foreign, id('foreign'), A.evt, 'x');
      assert.notEqual(pub.code, 0, `mosquitto_pub with a foreign certificate succeeded:\n${pub.stdout}`);
      assert.doesNotMatch(pub.stdout, /received CONNACK/);
      const result = await tryConnect(broker.url, mqttOptions(foreign, id('foreign')));
      if (result.client) await result.client.endAsync(true);
      assert.ok(result.error, 'mqtt.js with a foreign certificate connected');
    });

    test('plain MQTT without TLS is refused', async () => {
      const result = await tryConnect(`mqtt://127.0.0.1:${broker.port}`, {
        protocolVersion: 5,
        clientId: id('plain'),
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      });
      if (result.client) await result.client.endAsync(true);
      assert.ok(result.error, 'a plain-text client connected to the TLS listener');
    });
  });

  describe('a device is confined to its own topics', () => {
    test('device A publishes on its evt topic and the hub receives it', async () => {
      const hub = await recorder(broker.hubTls(), 'hub', ['doorbell/v1/+/evt']);
      const pub = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), own('dev-a'), A.evt, 'a-evt-1');
      assert.notEqual(pubackReason(pub), NOT_AUTHORIZED, pub.stdout);
      const got = await hub.waitFor((m) => m.payload === 'a-evt-1', 'A evt at the hub');
      assert.equal(got.topic, A.evt);
    });

    test("A's subscription to B's cmd (and to doorbell/v1/#) delivers nothing of B's", async () => {
      const b = await recorder(broker.deviceTls('dev-b'), 'dev-b', [B.cmd]);
      const a = await recorder(broker.deviceTls('dev-a'), 'dev-a', [B.cmd, 'doorbell/v1/#', A.cmd]);
      const hub = await recorder(broker.hubTls(), 'hub', []);
      await hub.client.publishAsync(B.cmd, 'for-b-only', { qos: 1 });
      await hub.client.publishAsync(A.cmd, 'sentinel-a-cmd', { qos: 1 });
      // Control: the message to B really was published and B may read it.
      await b.waitFor((m) => m.payload === 'for-b-only', "B's own command");
      await a.waitFor((m) => m.payload === 'sentinel-a-cmd', "A's own command (sentinel)");
      assert.deepEqual(
        a.received.filter((m) => m.topic !== A.cmd),
        [],
        'A received something outside its cmd topic',
      );
    });

    test("A's publish on B's evt, status or cmd never reaches anyone", async () => {
      const hub = await recorder(broker.hubTls(), 'hub', ['doorbell/v1/+/evt', 'doorbell/v1/+/status']);
      const b = await recorder(broker.deviceTls('dev-b'), 'dev-b', [B.cmd]);
      const aTls = broker.deviceTls('dev-a');
      for (const topic of [B.evt, B.status, B.cmd, A.cmd]) {
        const pub = await mosquittoPub(broker.port, aTls, own('dev-a'), topic, `forged-by-a ${topic}`);
        assert.equal(pubackReason(pub), NOT_AUTHORIZED, `A publishing on ${topic}:\n${pub.stdout}`);
      }
      await mosquittoPub(broker.port, aTls, own('dev-a'), A.evt, 'sentinel-a-evt');
      await hub.waitFor((m) => m.payload === 'sentinel-a-evt', "A's own event (sentinel)");
      await hub.client.publishAsync(B.cmd, 'sentinel-b-cmd', { qos: 1 });
      await b.waitFor((m) => m.payload === 'sentinel-b-cmd', "the hub's command to B (sentinel)");
      const forged = [...hub.received, ...b.received].filter((m) => m.payload.startsWith('forged-by-a'));
      assert.deepEqual(forged, [], 'a message A published outside its own topics was delivered');
    });

    test("A cannot read another device's status, retained or live", async () => {
      const bTls = broker.deviceTls('dev-b');
      const retained = await mosquittoPub(broker.port, bTls, own('dev-b'), B.status, 'b-status-retained', [
        '-r',
      ]);
      assert.notEqual(pubackReason(retained), NOT_AUTHORIZED, retained.stdout);
      const hub = await recorder(broker.hubTls(), 'hub', [B.status]);
      const a = await recorder(broker.deviceTls('dev-a'), 'dev-a', [B.status, A.cmd]);
      await mosquittoPub(broker.port, bTls, own('dev-b'), B.status, 'b-status-live');
      // Control: the hub sees both, so both really exist on the broker.
      await hub.waitFor((m) => m.payload === 'b-status-retained', "B's retained status at the hub");
      await hub.waitFor((m) => m.payload === 'b-status-live', "B's live status at the hub");
      await hub.client.publishAsync(A.cmd, 'sentinel-a-status', { qos: 1 });
      await a.waitFor((m) => m.payload === 'sentinel-a-status', 'sentinel');
      assert.deepEqual(
        a.received.filter((m) => m.topic === B.status),
        [],
        "A received B's status",
      );
      // Clear the retained message (as B) so that it does not leak into other tests.
      await mosquittoPub(broker.port, bTls, own('dev-b'), B.status, '', ['-r']);
    });
  });

  describe('the hub sees every device', () => {
    test('the hub publishes commands to any device and each device receives its own', async () => {
      const a = await recorder(broker.deviceTls('dev-a'), 'dev-a', [A.cmd]);
      const b = await recorder(broker.deviceTls('dev-b'), 'dev-b', [B.cmd]);
      for (const [topic, text] of [
        [A.cmd, 'cmd-to-a'],
        [B.cmd, 'cmd-to-b'],
      ] as const) {
        const pub = await mosquittoPub(broker.port, broker.hubTls(), own('hub'), topic, text);
        assert.equal(pub.code, 0, pub.stdout + pub.stderr);
        assert.notEqual(pubackReason(pub), NOT_AUTHORIZED, pub.stdout);
      }
      assert.equal((await a.waitFor((m) => m.payload === 'cmd-to-a', 'A cmd')).topic, A.cmd);
      assert.equal((await b.waitFor((m) => m.payload === 'cmd-to-b', 'B cmd')).topic, B.cmd);
      assert.ok(!a.received.some((m) => m.payload === 'cmd-to-b'));
    });

    test('the hub reads every evt and status topic', async () => {
      const hub = await recorder(broker.hubTls(), 'hub', ['doorbell/v1/+/evt', 'doorbell/v1/+/status']);
      for (const [device, topics] of [
        ['dev-a', A],
        ['dev-b', B],
      ] as const) {
        for (const topic of [topics.evt, topics.status]) {
          const pub = await mosquittoPub(
            broker.port,
            broker.deviceTls(device),
            own(device),
            topic,
            `from ${topic}`,
          );
          assert.notEqual(pubackReason(pub), NOT_AUTHORIZED, pub.stdout);
          const got = await hub.waitFor((m) => m.payload === `from ${topic}`, `${topic} at the hub`);
          assert.equal(got.topic, topic);
        }
      }
    });
  });
});

function pick(files: { cert: string; key: string } | undefined): { cert: string; key: string } {
  assert.ok(files, 'certificate files');
  return { cert: files.cert, key: files.key };
}
