import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt-connection.js';
import { EventWatcher, type VerifiedEvent } from '../hub/event-watcher.js';
import {
  doorbell,
  generateSigningKey,
  newCorrelationId,
  publicKeyToText,
  sealCommand,
  topicsFor,
} from '../proto/index.js';
import { waitFor } from '../test-support/wait-for.js';
import { parseConfig } from './config/load.js';
import { type RunningDoorbell, startDoorbell } from './root.js';

const hubKey = generateSigningKey();
let dir: string;
let broker: RunningBroker;
let raw: MqttClient;
let hub: MqttConnection;
const results: VerifiedEvent[] = [];
let onlineStatuses = 0;

const config = () =>
  parseConfig(
    {
      deviceId: 'front-door',
      stateDir: join(dir, 'device'),
      broker: { url: broker.url, reconnect: { minMs: 100, maxMs: 400 } },
      trust: { hubKeys: [publicKeyToText(hubKey)] },
      hal: { backend: 'sim' },
    },
    'test',
  );

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-replay-'));
  broker = await startMosquitto();
  raw = await connectAsync(broker.url, { protocolVersion: 5, clientId: 'test-replayer' });
});
after(async () => {
  await hub?.stop();
  await raw?.endAsync();
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

const rings = (d: RunningDoorbell): number => d.hal.sim?.chimeHistory().filter((c) => c.on).length ?? 0;

test('a duplicated delivery rings once; a captured command replayed after a restart is refused as REPLAY', async () => {
  let device = await startDoorbell(config(), { logger: silentLogger() });
  hub = new MqttConnection({
    url: broker.url,
    clientId: 'test-replay-hub',
    logger: silentLogger(),
    subscriptions: EventWatcher.subscriptions,
  });
  const watcher = new EventWatcher(new Map([[device.deviceId, device.key]]), silentLogger());
  watcher.on('event', (e) => {
    if (e.event.kind === 'commandResult') results.push(e);
    if (e.event.status?.state === doorbell.v1.Status.State.ONLINE) onlineStatuses += 1;
  });
  hub.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
  hub.start();
  await waitFor(() => onlineStatuses > 0, 'the doorbell online', 10_000);
  try {
    const now = Date.now();
    const captured = sealCommand(
      doorbell.v1.Command.create({
        header: {
          deviceId: 'front-door',
          topic: topicsFor('front-door').cmd,
          counter: 7,
          issuedAtMs: now,
          expiresAtMs: now + 30_000,
          correlationId: newCorrelationId(),
        },
        ringChimeTest: {},
      }),
      hubKey,
    );
    await raw.publishAsync(topicsFor('front-door').cmd, Buffer.from(captured), { qos: 1 });
    await raw.publishAsync(topicsFor('front-door').cmd, Buffer.from(captured), { qos: 1 });
    await waitFor(() => results.length >= 1, 'the first result', 10_000);
    // A later command: the device handles commands in delivery order, so once it is answered
    // the duplicate before it was handled too.
    const markerId = newCorrelationId();
    const marker = sealCommand(
      doorbell.v1.Command.create({
        header: {
          deviceId: 'front-door',
          topic: topicsFor('front-door').cmd,
          counter: 8,
          issuedAtMs: now,
          expiresAtMs: now + 30_000,
          correlationId: markerId,
        },
        getStatus: {},
      }),
      hubKey,
    );
    await raw.publishAsync(topicsFor('front-door').cmd, Buffer.from(marker), { qos: 1 });
    await waitFor(
      () => results.some((r) => r.correlationId === markerId),
      'the later command answered',
      10_000,
    );
    assert.equal(rings(device), 1, 'the duplicate did not ring again');
    assert.equal(
      results.length,
      2,
      'one result for the command, one for the later one, none for the duplicate',
    );
    assert.equal(results[0]?.event.commandResult?.ok, true);

    await device.stop();
    const before = onlineStatuses;
    device = await startDoorbell(config(), { logger: silentLogger() });
    await waitFor(() => onlineStatuses > before, 'the restarted doorbell online', 10_000);
    await raw.publishAsync(topicsFor('front-door').cmd, Buffer.from(captured), { qos: 1 });
    await waitFor(() => results.length >= 3, 'the answer to the replay', 10_000);
    const answer = results[2]?.event.commandResult;
    assert.equal(answer?.ok, false);
    assert.equal(doorbell.v1.ErrorKind[answer?.errorKind ?? 0], 'REPLAY');
    assert.equal(rings(device), 0, 'the replayed command did not ring after the restart');
  } finally {
    await device.stop();
  }
});
