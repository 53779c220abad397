import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startMosquitto } from '../../broker/local-mosquitto.js';
import { silentLogger } from '../../common/logger.js';
import { MqttConnection } from '../../common/mqtt-connection.js';
import { DeviceChannel } from './device-channel.js';
import { Outbox } from './outbox.js';

test('the ONLINE status goes out only after the broker confirmed the command subscription, so a hub that sees it is heard', async (t) => {
  const broker = await startMosquitto();
  const dir = mkdtempSync(join(tmpdir(), 'device-channel-'));
  const connection = new MqttConnection({
    url: broker.url,
    clientId: 'dc-test',
    logger: silentLogger(),
    subscriptions: ['doorbell/v1/dc-test/cmd'],
  });
  const outbox = Outbox.open(join(dir, 'outbox'), { max: 10, logger: silentLogger() });
  const channel = new DeviceChannel({
    connection,
    outbox,
    onlineStatus: () => ({ topic: 'doorbell/v1/dc-test/status', payload: Uint8Array.of(1) }),
    heartbeatMs: 3_600_000,
    ackTimeoutMs: 10_000,
    logger: silentLogger(),
  });
  t.after(async () => {
    await channel.stop(() => ({ topic: 'doorbell/v1/dc-test/status', payload: Uint8Array.of(0) }));
    outbox.close();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const order: string[] = [];
  connection.on('connected', () => order.push('connected'));
  connection.on('subscribed', () => order.push('subscribed'));
  let statusSent: () => void = () => {};
  const sent = new Promise<void>((resolve) => {
    statusSent = resolve;
  });
  const publish = connection.publish.bind(connection);
  connection.publish = (topic, payload, opts) => {
    order.push(`publish ${topic}`);
    if (topic.endsWith('/status')) statusSent();
    return publish(topic, payload, opts);
  };
  channel.start();
  await sent;
  assert.deepEqual(order, ['connected', 'subscribed', 'publish doorbell/v1/dc-test/status']);
});
