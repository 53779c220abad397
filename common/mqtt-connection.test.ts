import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { type RunningBroker, startMosquitto } from '../test-support/mosquitto.js';
import { silentLogger } from './logger.js';
import { MqttConnection } from './mqtt-connection.js';

let broker: RunningBroker;
let raw: MqttClient;
before(async () => {
  broker = await startMosquitto();
  raw = await connectAsync(broker.url, { protocolVersion: 5, clientId: 'test-publisher' });
});
after(async () => {
  await raw?.endAsync();
  await broker?.stop();
});

/** Connects, waits for the subscription, disconnects; then 3 messages are published; then it connects again. */
async function missedWhileAway(clientId: string, persistentSessionS: number | undefined): Promise<string[]> {
  const topic = `test/${clientId}`;
  const make = () =>
    new MqttConnection({
      url: broker.url,
      clientId,
      logger: silentLogger(),
      subscriptions: [topic],
      persistentSessionS,
    });
  const first = make();
  const connected = new Promise<void>((resolve) => first.once('connected', resolve));
  first.start();
  await connected;
  await new Promise((r) => setTimeout(r, 200)); // the SUBACK is in
  await first.stop();
  for (const n of ['1', '2', '3']) await raw.publishAsync(topic, n, { qos: 1 });
  const second = make();
  const got: string[] = [];
  second.on('message', (_t, payload) => got.push(payload.toString()));
  second.start();
  await new Promise((r) => setTimeout(r, 800));
  await second.stop();
  return got;
}

test('a persistent session receives, in order, what was published while it was away', async () => {
  assert.deepEqual(await missedWhileAway('persistent-hub', 3600), ['1', '2', '3']);
});

test('a clean session does not (the control)', async () => {
  assert.deepEqual(await missedWhileAway('clean-hub', undefined), []);
});
