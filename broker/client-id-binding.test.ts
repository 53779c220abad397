// The MQTT client id is bound to the certificate on the locked-down broker.
//
// Mosquitto lets a new connection with an existing client id take that id's
// session over: the old connection is dropped, and with clean start the
// session (subscriptions, queued messages) is wiped. Without a binding, one
// board's certificate could disconnect another board, or wipe the hub's
// persistent watch session and the events queued in it. The doorbell_auth
// plugin therefore refuses, at CONNECT, any client id the certificate does not
// own: a doorbell (CN = device id) only its device id, the hub (CN = hub name)
// only `<hub name>:<suffix>`. Both mqtt.js and the Debian `mosquitto_pub` and
// `mosquitto_sub` are used as clients.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hubClientId } from '../hub/client-id.js';
import { topicsFor } from '../proto/index.js';
import { type RunningTlsBroker, startTlsMosquitto } from '../test-support/tls-mosquitto.js';
import {
  connectArgs,
  mosquittoPub,
  mqttOptions,
  pubackReason,
  Recorder,
  runMosquittoClient,
  type TlsFiles,
  tryConnect,
} from './broker-test-clients.js';

const A = topicsFor('dev-a');
const B = topicsFor('dev-b');
const NOT_AUTHORIZED = 135;
/** The hub's persistent watch session, as `doorbell-hub watch` names it: `<hub name>:watch-<hub key id>`. */
const HUB_WATCH_ID = 'hub:watch-0123456789abcdef';
const WEEK_S = 7 * 24 * 3600;

let seq = 0;
const hubId = (name: string): string => `hub:${name}-${process.pid}-${++seq}`;

describe('a client id belongs to the certificate that may use it', () => {
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
  /** Expects mqtt.js to be refused with CONNACK "not authorized". */
  const refusedMqttJs = async (tls: TlsFiles, clientId: string, clean = true): Promise<void> => {
    const result = await tryConnect(broker.url, { ...mqttOptions(tls, clientId), clean });
    if (result.client) {
      await result.client.endAsync(true);
      assert.fail(`mqtt.js connected as ${JSON.stringify(clientId)}`);
    }
    assert.equal((result.error as Error & { code?: number }).code, NOT_AUTHORIZED, result.error.message);
  };
  /** Expects `mosquitto_pub` to be refused with CONNACK 135 and to send nothing. */
  const refusedMosquittoPub = async (tls: TlsFiles, clientId: string, topic: string): Promise<void> => {
    const pub = await mosquittoPub(broker.port, tls, clientId, topic, `as ${clientId}`);
    assert.notEqual(pub.code, 0, `${pub.stdout}${pub.stderr}`);
    assert.match(pub.stdout, /received CONNACK \(135\)/, `${clientId}: ${pub.stdout}${pub.stderr}`);
    assert.doesNotMatch(pub.stdout, /sending PUBLISH/, pub.stdout);
  };

  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['dev-a', 'dev-b', 'front', 'front-door'] });
  });
  after(async () => {
    await Promise.allSettled(recorders.map((r) => r.end()));
    await broker?.stop();
  });

  test("device A's certificate with device B's client id is refused (mqtt.js, mosquitto_pub, mosquitto_sub) and B stays connected", async () => {
    const b = await record(broker.deviceTls('dev-b'), 'dev-b', [B.cmd]);
    const aTls = broker.deviceTls('dev-a');
    await refusedMqttJs(aTls, 'dev-b');
    await refusedMosquittoPub(aTls, 'dev-b', A.evt);
    const sub = await runMosquittoClient('mosquitto_sub', [
      ...connectArgs(broker.port, aTls, 'dev-b'),
      '-d',
      '-t',
      A.cmd,
      '-C',
      '1',
      '-W',
      '10',
    ]);
    assert.notEqual(sub.code, 0, `${sub.stdout}${sub.stderr}`);
    assert.match(sub.stdout, /received CONNACK \(135\)/, `${sub.stdout}${sub.stderr}`);
    assert.match(broker.output(), /doorbell_auth: refused .*client id "dev-b".*certificate CN "dev-a"/);

    // B still holds its session: a command to B reaches the connection B opened.
    const hub = await record(broker.hubTls(), hubId('cmd'), []);
    await hub.client.publishAsync(B.cmd, 'still-b', { qos: 1 });
    await b.waitFor((m) => m.payload === 'still-b', "the hub's command at the real B");
    assert.equal(b.closed, false, 'B was disconnected');
  });

  test("device A's certificate with clean start as the hub's watch client id is refused; the hub's persistent session keeps its queued event", async () => {
    const persistent = { clean: false, properties: { sessionExpiryInterval: WEEK_S } };
    const watch = await record(broker.hubTls(), HUB_WATCH_ID, ['doorbell/v1/+/evt'], persistent);
    await watch.end();
    // The hub is away: A's event waits in the hub's session at the broker.
    const queued = await mosquittoPub(
      broker.port,
      broker.deviceTls('dev-a'),
      'dev-a',
      A.evt,
      'queued-for-hub',
    );
    assert.equal(pubackReason(queued), 0, `A's event was not accepted for a subscriber: ${queued.stdout}`);

    await refusedMqttJs(broker.deviceTls('dev-a'), HUB_WATCH_ID, true);
    await refusedMosquittoPub(broker.deviceTls('dev-a'), HUB_WATCH_ID, A.evt);

    const back = await record(broker.hubTls(), HUB_WATCH_ID, [], persistent);
    assert.equal(back.sessionPresent, true, "the hub's session was wiped");
    await back.waitFor((m) => m.payload === 'queued-for-hub', 'the event queued while the hub was away');
  });

  test('a device connects only with its own device id, never a longer id that starts with it', async () => {
    for (const [cn, clientId] of [
      ['dev-a', 'dev-a-2'],
      ['dev-a', 'dev-a:2'],
      ['dev-a', 'dev-a.2'],
      ['front', 'front-door'],
      ['front', 'front:door'],
      ['front-door', 'front'],
      ['front-door', 'front:door'],
      ['dev-a', 'hub'],
      ['dev-a', 'hub:x'],
    ] as const) {
      await refusedMqttJs(broker.deviceTls(cn), clientId);
      await refusedMosquittoPub(broker.deviceTls(cn), clientId, topicsFor(cn).evt);
    }
    // Control: with its own id each of them connects.
    for (const cn of ['dev-a', 'front', 'front-door']) {
      const pub = await mosquittoPub(broker.port, broker.deviceTls(cn), cn, topicsFor(cn).evt, 'own id');
      assert.match(pub.stdout, /received CONNACK \(0\)/, `${cn}: ${pub.stdout}${pub.stderr}`);
    }
  });

  test("the hub's certificate connects only as <hub name>:<suffix>, never with a device's id", async () => {
    const b = await record(broker.deviceTls('dev-b'), 'dev-b', [B.cmd]);
    for (const clientId of ['dev-b', 'hub', 'hub:', 'hub-x', 'hubx:1', 'hub:a:b', 'hub:a.b', 'auto-1']) {
      await refusedMqttJs(broker.hubTls(), clientId);
      await refusedMosquittoPub(broker.hubTls(), clientId, B.cmd);
    }
    const hub = await record(broker.hubTls(), hubId('ok'), []);
    await hub.client.publishAsync(B.cmd, 'from-hub', { qos: 1 });
    await b.waitFor((m) => m.payload === 'from-hub', "the hub's command at B");
    assert.equal(b.closed, false, 'B was disconnected');
  });

  test("the hub's own client ids (commands, pair, ota, watch) are derived from its certificate's CN and connect", async () => {
    const tls = broker.hubTls();
    const ids = [
      hubClientId(tls, '', 'unique'),
      hubClientId(tls, 'pair', 'unique'),
      hubClientId(tls, 'ota', 'unique'),
      hubClientId(tls, 'watch-0123456789abcdef', 'stable'),
    ];
    assert.match(ids[0] ?? '', /^hub:\d+-[0-9a-f]{6}$/);
    assert.match(ids[1] ?? '', /^hub:pair-\d+-[0-9a-f]{6}$/);
    assert.match(ids[2] ?? '', /^hub:ota-\d+-[0-9a-f]{6}$/);
    assert.equal(ids[3], HUB_WATCH_ID);
    for (const clientId of ids) {
      const result = await tryConnect(broker.url, mqttOptions(tls, clientId));
      assert.ok(result.client, `${clientId}: ${result.error?.message}`);
      await result.client.endAsync();
    }
  });

  test('an empty client id (MQTT 5: the broker assigns one) is refused for every certificate', async () => {
    for (const tls of [broker.deviceTls('dev-a'), broker.hubTls()]) {
      await refusedMqttJs(tls, '');
    }
  });
});
