import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { startMqttProxy } from '../test-support/mqtt-proxy.js';
import { type Logger, silentLogger } from './logger.js';
import { MqttConnection } from './mqtt-connection.js';
import { maxPublishPacketBytes } from './mqtt-frames.js';

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
  const subscribed = new Promise<void>((resolve) => first.once('subscribed', resolve));
  first.start();
  await subscribed; // the SUBACK is in: the broker holds the session's subscription
  await first.stop();
  for (const n of ['1', '2', '3']) await raw.publishAsync(topic, n, { qos: 1 });
  const second = make();
  const got: string[] = [];
  const end = new Promise<void>((resolve) =>
    second.on('message', (_t, payload) => {
      if (payload.toString() === 'end') resolve();
      else got.push(payload.toString());
    }),
  );
  const again = new Promise<void>((resolve) => second.once('subscribed', resolve));
  second.start();
  await again;
  // A marker published now arrives after anything the broker kept for the session.
  await raw.publishAsync(topic, 'end', { qos: 1 });
  await end;
  await second.stop();
  return got;
}

test('a persistent session receives, in order, what was published while it was away', async () => {
  assert.deepEqual(await missedWhileAway('persistent-hub', 3600), ['1', '2', '3']);
});

test('a clean session does not (the control)', async () => {
  assert.deepEqual(await missedWhileAway('clean-hub', undefined), []);
});

/** A logger whose lines the test reads. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug', base: undefined },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

test('a message listener that throws is logged with topic and size, and the next message is still delivered', async () => {
  const topic = 'test/throwing-listener';
  const { logger, lines } = capturingLogger();
  const connection = new MqttConnection({
    url: broker.url,
    clientId: 'throwing-listener',
    logger,
    subscriptions: [topic],
  });
  const got: string[] = [];
  const second = new Promise<void>((resolve) => {
    connection.on('message', (_t, payload) => {
      got.push(payload.toString());
      if (got.length === 1) throw new Error('sealing the reply failed');
      resolve();
    });
  });
  const subscribed = new Promise<void>((resolve) => connection.once('subscribed', () => resolve()));
  connection.start();
  try {
    await subscribed;
    await raw.publishAsync(topic, 'first', { qos: 1 });
    await raw.publishAsync(topic, 'second', { qos: 1 });
    await second;
    assert.deepEqual(got, ['first', 'second']);
    const logged = lines.find((l) => l.msg === 'mqtt: a message listener failed');
    assert.ok(logged, JSON.stringify(lines));
    assert.equal(logged.level, 50, 'error level');
    assert.equal(logged.topic, topic);
    assert.equal(logged.bytes, 'first'.length);
    assert.match(JSON.stringify(logged.err), /sealing the reply failed/);
  } finally {
    await connection.stop();
  }
});

test('a packet announced above the maximum packet size closes the connection at its header, before its body arrives', async () => {
  const proxy = await startMqttProxy(broker.port);
  const { logger, lines } = capturingLogger();
  const maximumPacketSize = 64 * 1024;
  const connection = new MqttConnection({
    url: proxy.url,
    clientId: 'oversized-receiver',
    logger,
    maximumPacketSize,
    backoff: { minMs: 50, maxMs: 100 },
  });
  try {
    const connected = new Promise<void>((resolve) => connection.once('connected', () => resolve()));
    connection.start();
    await connected;
    // A well-formed QoS 0 PUBLISH of 128 MiB on topic 't', as no compliant broker would send it.
    const bodyBytes = 128 * 1024 * 1024;
    const remaining = 2 + 1 + 1 + bodyBytes;
    const length: number[] = [];
    for (let n = remaining; ; ) {
      const byte = n % 128;
      n = Math.floor(n / 128);
      length.push(n > 0 ? byte | 0x80 : byte);
      if (n === 0) break;
    }
    const header = Buffer.from([0x30, ...length, 0, 1, 0x74, 0]);
    const reconnected = new Promise<void>((resolve) => connection.once('connected', () => resolve()));
    const taken = await proxy.floodClient(header, bodyBytes);
    assert.ok(taken < bodyBytes / 4, `the client took ${taken} of ${bodyBytes} bytes before closing`);
    const logged = lines.find((l) => l.msg === 'mqtt: incoming packet above the maximum packet size');
    assert.ok(logged, JSON.stringify(lines));
    assert.equal(logged.packetBytes, 1 + length.length + remaining);
    assert.equal(logged.maximumPacketSize, maximumPacketSize);
    await reconnected;
  } finally {
    await connection.stop();
    await proxy.stop();
  }
});

test('Mosquitto sends a subscriber a PUBLISH of maxPublishPacketBytes (and, miscounting, one byte more) and drops one 2 bytes larger', async () => {
  const topic = `test/${'t'.repeat(70)}`;
  const payloadBytes = 16 * 1024;
  const { logger, lines } = capturingLogger();
  const connection = new MqttConnection({
    url: broker.url,
    clientId: 'exact-size-receiver',
    logger,
    subscriptions: [topic],
    maximumPacketSize: maxPublishPacketBytes(Buffer.byteLength(topic), payloadBytes),
  });
  const sizes: number[] = [];
  let gotMarker: () => void = () => {};
  const marker = new Promise<void>((resolve) => {
    gotMarker = resolve;
  });
  connection.on('message', (_t, payload) => {
    sizes.push(payload.length);
    if (payload.length === 1) gotMarker();
  });
  const subscribed = new Promise<void>((resolve) => connection.once('subscribed', () => resolve()));
  connection.start();
  try {
    await subscribed;
    await raw.publishAsync(topic, Buffer.alloc(payloadBytes), { qos: 1 });
    // Mosquitto 2.0.11 leaves the fixed header's first byte out of its comparison: it sends this one.
    await raw.publishAsync(topic, Buffer.alloc(payloadBytes + 1), { qos: 1 });
    await raw.publishAsync(topic, Buffer.alloc(payloadBytes + 2), { qos: 1 });
    await raw.publishAsync(topic, Buffer.alloc(1), { qos: 1 });
    await marker;
    assert.deepEqual(
      sizes,
      [payloadBytes, payloadBytes + 1, 1],
      'the largest allowed arrived, the larger one did not',
    );
    assert.match(broker.output(), /Dropping too large outgoing PUBLISH for exact-size-receiver/);
    assert.equal(connection.connected, true);
    assert.deepEqual(
      lines.filter((l) => Number(l.level) >= 50),
      [],
      'nothing was refused on the client side',
    );
  } finally {
    await connection.stop();
  }
});
