import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { type Logger, silentLogger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt-connection.js';
import {
  CounterStore,
  doorbell,
  fingerprintOf,
  generateSigningKey,
  type SigningKey,
  sealEvent,
  topicsFor,
} from '../proto/index.js';
import { CommandTimeoutError } from './commander.js';
import { EventWatcher } from './event-watcher.js';
import { PairingRefusedError, pairDevice } from './pairing.js';

const DEVICE = 'porch';
const TOPICS = topicsFor(DEVICE);
let broker: RunningBroker;
let dir: string;
let device: MqttClient;
let hub: MqttConnection;
const warnings: string[] = [];
/** Collects what pairing warns about. */
const capturing = {
  ...silentLogger(),
  warn: (_o: unknown, msg?: string) => warnings.push(String(msg)),
} as Logger;

before(async () => {
  broker = await startMosquitto();
  dir = await mkdtemp(join(tmpdir(), 'hub-pairing-'));
  device = await connectAsync(broker.url, { protocolVersion: 5, clientId: 'scripted-device' });
  await device.subscribeAsync(TOPICS.cmd, { qos: 1 });
  const logger = {
    ...silentLogger(),
    warn: (_o: unknown, msg?: string) => warnings.push(String(msg)),
  } as Logger;
  hub = new MqttConnection({
    url: broker.url,
    clientId: 'hub-pairing-test',
    logger,
    subscriptions: EventWatcher.subscriptions,
  });
  const subscribed = new Promise<void>((resolve) => hub.once('subscribed', () => resolve()));
  hub.start();
  await subscribed;
});

after(async () => {
  await hub?.stop();
  await device?.endAsync();
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A signed CommandResult from `key` answering the command with `correlationId`. */
function answer(key: SigningKey, correlationId: string, result: doorbell.v1.ICommandResult): Buffer {
  const now = Date.now();
  return Buffer.from(
    sealEvent(
      {
        header: {
          deviceId: DEVICE,
          topic: TOPICS.evt,
          counter: 1 + Math.floor(Math.random() * 1000),
          issuedAtMs: now,
          expiresAtMs: now + 30_000,
          correlationId,
          keyEpoch: 0,
        },
        commandResult: result,
      },
      key,
    ),
  );
}

/** The next Pair command's correlation id, as the scripted device receives it. */
function nextPair(): Promise<string> {
  return new Promise((resolve) => {
    device.once('message', (_topic, payload) => {
      const envelope = doorbell.v1.Envelope.decode(payload);
      resolve(doorbell.v1.Command.decode(envelope.body).header?.correlationId ?? '');
    });
  });
}

async function request(code: { deviceId: string; fingerprint: string; secret: Buffer }, timeoutMs: number) {
  return pairDevice(
    hub,
    {
      code,
      owner: generateSigningKey(),
      ownerCounters: await CounterStore.open(join(await mkdtemp(join(dir, 'c-')), 'counter')),
      ownerLabel: 'alice',
      recipients: [],
      timeoutMs,
    },
    capturing,
  );
}

test('an answer from a key without the code fingerprint is ignored; the real device refusal is reported', async () => {
  const real = generateSigningKey();
  const impostor = generateSigningKey();
  const code = { deviceId: DEVICE, fingerprint: fingerprintOf(real.publicRaw), secret: randomBytes(32) };
  const cid = nextPair();
  const paired = request(code, 10_000);
  const outcome = assert.rejects(paired, (err) => {
    assert.ok(err instanceof PairingRefusedError);
    assert.equal(err.errorKind, 'PAIRING_WINDOW_CLOSED');
    return true;
  });
  const correlationId = await cid;
  const refusal = (key: SigningKey) =>
    answer(key, correlationId, {
      ok: false,
      errorKind: doorbell.v1.ErrorKind.PAIRING_WINDOW_CLOSED,
      errorMessage: 'the pairing window is closed',
      paired: { devicePublicKey: key.publicRaw },
    });
  // The impostor answers first, claiming its own key, then the real device answers.
  await device.publishAsync(TOPICS.evt, refusal(impostor), { qos: 1 });
  await device.publishAsync(TOPICS.evt, refusal(real), { qos: 1 });
  await outcome;
  assert.ok(
    warnings.some((w) => /ignored an unverifiable answer/.test(w)),
    `the impostor's answer was logged and ignored: ${warnings.join('; ')}`,
  );
});

test('an answer naming the right key but signed by another is ignored, not trusted', async () => {
  const real = generateSigningKey();
  const forger = generateSigningKey();
  const code = { deviceId: DEVICE, fingerprint: fingerprintOf(real.publicRaw), secret: randomBytes(32) };
  const cid = nextPair();
  const paired = request(code, 1_500);
  paired.catch(() => undefined); // judged below, once the forgery is sent
  const correlationId = await cid;
  const forged = answer(forger, correlationId, {
    ok: true,
    paired: { devicePublicKey: real.publicRaw, deviceProof: randomBytes(32) },
  });
  await device.publishAsync(TOPICS.evt, forged, { qos: 1 });
  // Nothing trustworthy came: the request ends at its deadline, saying what to check.
  await assert.rejects(paired, (err) => {
    assert.ok(err instanceof CommandTimeoutError);
    assert.match(err.message, /no answer from porch within 1500 ms: is its pairing window open/);
    return true;
  });
});

test('a pairing that cannot be sent fails at once and leaves no listener behind', async () => {
  const offline = new MqttConnection({
    url: broker.url,
    clientId: 'hub-pairing-offline',
    logger: silentLogger(),
    subscriptions: [],
  });
  const listeners = offline.listenerCount('message');
  const code = {
    deviceId: DEVICE,
    fingerprint: fingerprintOf(generateSigningKey().publicRaw),
    secret: randomBytes(32),
  };
  await assert.rejects(
    pairDevice(
      offline,
      {
        code,
        owner: generateSigningKey(),
        ownerCounters: await CounterStore.open(join(await mkdtemp(join(dir, 'c-')), 'counter')),
        ownerLabel: 'alice',
        recipients: [],
        timeoutMs: 10_000,
      },
      silentLogger(),
    ),
  );
  assert.equal(offline.listenerCount('message'), listeners);
});
