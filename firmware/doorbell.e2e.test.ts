import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { freePort } from '../common/free-port.js';
import {
  doorbell,
  generateSigningKey,
  newCorrelationId,
  type SigningKey,
  sealCommand,
  topicsFor,
} from '../proto/index.js';
import { type Harness, startHarness } from '../test-support/doorbell-harness.js';

const { ErrorKind } = doorbell.v1;

function chimeOnCount(h: Harness): number {
  return h.device.hal.sim?.chimeHistory().filter((c) => c.on).length ?? 0;
}

function forgedCommand(key: SigningKey, header: Partial<doorbell.v1.IHeader>): Uint8Array {
  const now = Date.now();
  return sealCommand(
    doorbell.v1.Command.create({
      header: {
        deviceId: 'front-door',
        topic: topicsFor('front-door').cmd,
        counter: 1,
        issuedAtMs: now,
        expiresAtMs: now + 30_000,
        correlationId: newCorrelationId(),
        ...header,
      },
      ringChimeTest: {},
    }),
    key,
  );
}

describe('a press rings locally and reaches the hub verified', () => {
  let broker: RunningBroker;
  let h: Harness;
  let raw: MqttClient;
  before(async () => {
    broker = await startMosquitto();
    // No minimum gap between rings: a chime test may follow a press as soon as its pulse ended.
    h = await startHarness(broker.url, { hal: { chime: { minGapMs: 0 } } });
    raw = await connectAsync(broker.url, { protocolVersion: 5, clientId: 'test-raw' });
    await h.waitForEvent((e) => e.channel === 'status', 10_000, 'the online status');
  });
  after(async () => {
    await raw?.endAsync();
    await h?.stop();
    await broker?.stop();
  });

  test('press -> chime on the sim wire -> ButtonPressed and ChimeRang verified at the hub', async () => {
    const sim = h.device.hal.sim;
    assert.ok(sim, 'sim backend exposes its wires');
    const before = chimeOnCount(h);
    await sim.press(80);
    assert.equal(chimeOnCount(h), before + 1, 'exactly one ring for one press');
    const pressed = await h.waitForEvent((e) => e.event.kind === 'buttonPressed', 10_000, 'buttonPressed');
    const rang = await h.waitForEvent((e) => e.event.kind === 'chimeRang', 10_000, 'chimeRang');
    assert.equal(pressed.deviceId, 'front-door');
    assert.equal(rang.event.chimeRang?.rang, true);
    assert.ok(rang.counter > pressed.counter, 'counters increase in emission order');
    const us = Number(rang.event.chimeRang?.pressToChimeUs);
    assert.ok(us >= 0 && us < 1_000_000, `press-to-chime ${us} us is plausible`);
  });

  test('status is retained and signed: a new subscriber gets ONLINE', async () => {
    const status = await h.waitForEvent((e) => e.channel === 'status', 5_000, 'status');
    assert.equal(status.event.status?.state, doorbell.v1.Status.State.ONLINE);
    assert.equal(status.event.status?.halBackend, 'sim');
  });

  test('a hub command rings the chime and gets a signed ok result with the same correlation id', async () => {
    await h.chimeOff(); // a pulse still on (an earlier test's press) would make the chime busy
    const before = chimeOnCount(h);
    const { result, event } = await h.hub.commander.send('front-door', { ringChimeTest: {} }, 5_000);
    assert.equal(result.ok, true, `result: ${JSON.stringify(result)}`);
    assert.equal(event.channel, 'evt');
    assert.equal(chimeOnCount(h), before + 1);
  });

  test('get status answers with the status as detail', async () => {
    const { result } = await h.hub.commander.send('front-door', { getStatus: {} }, 5_000);
    assert.equal(result.ok, true);
    assert.equal(result.status?.firmwareVersion, '0.1.0');
  });

  const rejections: Array<[string, () => Uint8Array, doorbell.v1.ErrorKind, string?]> = [
    ['an unknown key', () => forgedCommand(generateSigningKey(), {}), ErrorKind.UNKNOWN_KEY],
    [
      'an expired command',
      () => forgedCommand(h.hubKey, { issuedAtMs: 1, expiresAtMs: 2 }),
      ErrorKind.EXPIRED,
    ],
    ['another device', () => forgedCommand(h.hubKey, { deviceId: 'back-door' }), ErrorKind.WRONG_DEVICE],
    [
      'another topic',
      () => forgedCommand(h.hubKey, { topic: topicsFor('back-door').cmd }),
      ErrorKind.WRONG_TOPIC,
    ],
    ['garbage bytes', () => Buffer.from('definitely not protobuf \xff\xff\xff'), ErrorKind.UNDECODABLE],
    [
      'an unsigned envelope',
      () => {
        const signed = doorbell.v1.Envelope.decode(forgedCommand(h.hubKey, {}));
        return doorbell.v1.Envelope.encode({ body: signed.body, keyId: signed.keyId }).finish();
      },
      ErrorKind.UNSIGNED,
    ],
    [
      'a flipped signature bit',
      () => {
        const b = Buffer.from(forgedCommand(h.hubKey, {}));
        b[b.length - 20] = (b[b.length - 20] ?? 0) ^ 1;
        return b;
      },
      ErrorKind.BAD_SIGNATURE,
      'or UNDECODABLE when the flip hits framing',
    ],
  ];
  for (const [name, make, kind] of rejections) {
    test(`${name} is refused with a signed typed error and does not ring`, async () => {
      const before = chimeOnCount(h);
      const seen = h.hub.events.length;
      await raw.publishAsync(topicsFor('front-door').cmd, Buffer.from(make()), { qos: 1 });
      const reply = await h.waitForEvent(
        (e) => h.hub.events.indexOf(e) >= seen && e.event.kind === 'commandResult',
        5_000,
        `error result for ${name}`,
      );
      assert.equal(reply.event.commandResult?.ok, false);
      const got = reply.event.commandResult?.errorKind;
      if (name === 'a flipped signature bit') {
        assert.ok(
          got === ErrorKind.BAD_SIGNATURE || got === ErrorKind.UNDECODABLE,
          `got ${ErrorKind[got ?? 0]}`,
        );
      } else {
        assert.equal(ErrorKind[got ?? 0], ErrorKind[kind]);
      }
      assert.equal(chimeOnCount(h), before, 'a refused command never rings');
    });
  }

  test('an oversized message never reaches the doorbell: the broker drops it for the maximum packet size the doorbell announced', async () => {
    const before = chimeOnCount(h);
    const seen = h.hub.events.length;
    await raw.publishAsync(topicsFor('front-door').cmd, Buffer.alloc(64 * 1024, 7), { qos: 1 });
    // From the same publisher, so delivered after the oversized one if that were delivered at all.
    await raw.publishAsync(topicsFor('front-door').cmd, Buffer.from('not protobuf \xff\xff'), { qos: 1 });
    const reply = await h.waitForEvent(
      (e) => h.hub.events.indexOf(e) >= seen && e.event.kind === 'commandResult',
      5_000,
      'the result of the message after it',
    );
    assert.equal(ErrorKind[reply.event.commandResult?.errorKind ?? 0], ErrorKind[ErrorKind.UNDECODABLE]);
    assert.match(broker.output(), /Dropping too large outgoing PUBLISH for front-door/);
    assert.equal(chimeOnCount(h), before);
  });
});

describe('ringing does not depend on the network', () => {
  test('a press while the broker is down rings at once and is delivered when the broker is back', async () => {
    const port = await freePort();
    // The hub must be subscribed before the doorbell comes back, or the broker acknowledges
    // the queued events to nobody: the doorbell retries every 5 s, the hub within 0.4 s.
    const h = await startHarness(`mqtt://127.0.0.1:${port}`, {
      broker: { url: `mqtt://127.0.0.1:${port}`, reconnect: { minMs: 5_000, maxMs: 5_000 } },
    });
    let broker: RunningBroker | undefined;
    try {
      const sim = h.device.hal.sim;
      assert.ok(sim);
      await sim.press(80);
      assert.equal(chimeOnCount(h), 1, 'rang with no broker at all');
      assert.ok(h.device.outbox.depth >= 2, 'events wait in the outbox');
      broker = await startMosquitto({ port });
      const pressed = await h.waitForEvent(
        (e) => e.event.kind === 'buttonPressed',
        15_000,
        'the queued press',
      );
      assert.equal(pressed.event.buttonPressed?.pressSeq, 1);
      await h.waitForEvent((e) => e.event.kind === 'chimeRang', 5_000, 'the queued chime event');
    } finally {
      await h.stop();
      await broker?.stop();
    }
  });
});

describe('retained messages on the command topic', () => {
  test('a retained command, even validly signed by a trusted hub, is ignored: no ring, no result', async () => {
    const broker = await startMosquitto();
    const hubKey = generateSigningKey();
    const raw = await connectAsync(broker.url, { protocolVersion: 5, clientId: 'test-retain' });
    let h: Harness | undefined;
    try {
      const planted = forgedCommand(hubKey, { expiresAtMs: Date.now() + 60_000 });
      await raw.publishAsync(topicsFor('front-door').cmd, Buffer.from(planted), { qos: 1, retain: true });
      h = await startHarness(broker.url, {}, hubKey);
      await h.waitForEvent((e) => e.channel === 'status', 10_000, 'online status');
      // The device handles its commands in the order the broker delivers them, and the retained
      // one came first, on subscribing: once a later command is answered it was handled too.
      const { result } = await h.hub.commander.send('front-door', { getStatus: {} }, 5_000);
      assert.equal(result.ok, true);
      assert.equal(chimeOnCount(h), 0);
      assert.equal(
        h.hub.events.filter((e) => e.event.kind === 'commandResult').length,
        1,
        'only the later answer',
      );
    } finally {
      await raw.publishAsync(topicsFor('front-door').cmd, Buffer.alloc(0), { qos: 1, retain: true });
      await raw.endAsync();
      await h?.stop();
      await broker.stop();
    }
  });
});
