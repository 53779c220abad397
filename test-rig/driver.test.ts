import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../common/logger.js';
import { waitFor } from '../test-support/wait-for.js';
import { FakeRig } from './fake-rig.js';
import { RigDriver } from './protocol/driver.js';
import type { ChimeEdge } from './protocol/driver-support.js';
import { isRigError } from './protocol/errors.js';
import { createPtyPair, type PtyPair } from './pty-pair.js';
import { openSerialTransport } from './serial-transport.js';

// The driver against a fake rig over a real pseudo-terminal pair made by socat:
// serial-transport (node-serialport) on one end, the fake rig on the other.

const until = (what: string, check: () => boolean, ms = 2000): Promise<void> => waitFor(check, what, ms);

interface Bench {
  pair: PtyPair;
  rig: FakeRig;
}

async function bench(): Promise<Bench> {
  const pair = await createPtyPair();
  const rig = new FakeRig(await openSerialTransport({ path: pair.paths[1] }));
  return { pair, rig };
}

describe('RigDriver over a socat pty pair', () => {
  const pairs: PtyPair[] = [];
  let b: Bench;
  let driver: RigDriver;

  before(async () => {
    b = await bench();
    pairs.push(b.pair);
    driver = new RigDriver(await openSerialTransport({ path: b.pair.paths[0] }), {
      logger: silentLogger(),
      replyMarginMs: 400,
    });
  });

  after(async () => {
    await driver?.close().catch(() => undefined);
    await b?.rig.close().catch(() => undefined);
    for (const pair of pairs) await pair.kill();
  });

  test('handshake: HELLO offers our versions, HELLO_ACK gives version, firmware, serial, capabilities', async () => {
    const identity = await driver.open();
    assert.deepEqual(identity, {
      version: 1,
      firmware: 'fake-1.0',
      serial: 'FAKE-1',
      capabilities: ['button', 'bounce', 'chime', 'power', 'lamp', 'console'],
    });
    assert.deepEqual(b.rig.received[0]?.message, { type: 'HELLO', versions: [1] });
  });

  test('ping echoes its payload and measures the round trip', async () => {
    const payload = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const pong = await driver.ping(payload);
    assert.deepEqual(pong.payload, payload, 'including 0x00 bytes, which COBS must carry');
    assert.ok(pong.roundTripMs > 0 && pong.roundTripMs < 1000);
  });

  test('press resolves with the ACK after the release, not before', async () => {
    const start = performance.now();
    await driver.press(120);
    assert.ok(performance.now() - start >= 115, 'the rig acknowledged after holding 120 ms');
    assert.deepEqual(b.rig.received.at(-1)?.message, { type: 'PRESS', durationMs: 120 });
    await assert.rejects(driver.press(0), TypeError, 'a bad duration is refused before sending');
  });

  test('chime edges arrive as unsolicited reports, in order; unsubscribing turns watching off', async () => {
    const edges: ChimeEdge[] = [];
    const stop = await driver.watchChime((edge) => edges.push(edge));
    assert.deepEqual(b.rig.received.at(-1)?.message, { type: 'CHIME_WATCH', on: true });
    await b.rig.send(0, { type: 'CHIME_EDGE', level: 1, tUs: 1_000_000n });
    await b.rig.send(0, { type: 'CHIME_EDGE', level: 0, tUs: 1_250_123n });
    await until('two chime edges', () => edges.length === 2);
    assert.deepEqual(edges, [
      { level: 1, tUs: 1_000_000n },
      { level: 0, tUs: 1_250_123n },
    ]);
    await stop();
    assert.deepEqual(b.rig.received.at(-1)?.message, { type: 'CHIME_WATCH', on: false });
  });

  test('an ERROR reply rejects the request as rejected, with the rig code and detail', async () => {
    b.rig.override = (f) =>
      f.message.type === 'POWER'
        ? { type: 'ERROR', code: 'hardware-fault', detail: 'relay stuck' }
        : undefined;
    await assert.rejects(driver.power(true), (err) => {
      assert.ok(isRigError(err, 'rejected'));
      assert.equal(err.rigCode, 'hardware-fault');
      assert.match(err.message, /POWER .*hardware-fault: relay stuck/);
      return true;
    });
    b.rig.override = undefined;
    await driver.power(true);
    assert.equal((await driver.info()).power, true);
  });

  test('a request the rig ignores times out with an error naming type, id, wait and how often it was sent', async () => {
    b.rig.override = (f) => (f.message.type === 'LAMP' ? null : undefined);
    await assert.rejects(driver.lamp(true), (err) => {
      assert.ok(isRigError(err, 'timeout'));
      assert.match(err.message, /^no reply to LAMP \(request #\d+\) within 400 ms \(sent 4 times\)$/);
      return true;
    });
    b.rig.override = (f) => (f.message.type === 'PRESS' ? null : undefined);
    await assert.rejects(driver.press(5), (err) => {
      assert.ok(isRigError(err, 'timeout'));
      assert.match(err.message, /^no reply to PRESS \(request #\d+\) within 405 ms$/);
      return true;
    });
    b.rig.override = undefined;
    await driver.lamp(true);
  });

  test('garbage on the line is counted and skipped; the next request still works', async () => {
    await b.rig.sendRaw(Uint8Array.of(0x13, 0x37, 0xde, 0xad, 0x00));
    const pong = await driver.ping(Uint8Array.of(1));
    assert.deepEqual(pong.payload, Uint8Array.of(1));
    assert.ok(Object.values(driver.linkErrors).reduce((x, y) => x + y, 0) >= 1);
  });
});

describe('RigDriver when the far end disappears', () => {
  const pairs: PtyPair[] = [];
  const drivers: RigDriver[] = [];

  after(async () => {
    for (const d of drivers) await d.close().catch(() => undefined);
    for (const pair of pairs) await pair.kill();
  });

  test('killing socat rejects pending requests as disconnected, later ones too, without a crash', async () => {
    const b1 = await bench();
    pairs.push(b1.pair);
    const driver = new RigDriver(await openSerialTransport({ path: b1.pair.paths[0] }), {
      replyMarginMs: 5000,
    });
    drivers.push(driver);
    await driver.open();
    b1.rig.override = (f) => (f.message.type === 'HOLD' ? null : undefined);
    // The expectation is attached at once: the rejection comes while socat is being killed.
    const pending = assert.rejects(driver.hold(10_000), (err) => {
      assert.ok(isRigError(err, 'disconnected'));
      assert.match(err.message, /rig transport closed/);
      return true;
    });
    await until('the rig to see HOLD', () => b1.rig.received.some((f) => f.message.type === 'HOLD'));
    await b1.pair.kill();
    await pending;
    await assert.rejects(driver.ping(), (err) => isRigError(err, 'disconnected'));
    await b1.rig.close().catch(() => undefined);
  });

  test('with a reconnect hook, the driver comes back on a new port and re-enables chime watching', async () => {
    const b1 = await bench();
    pairs.push(b1.pair);
    let b2: Bench | undefined;
    const driver = new RigDriver(await openSerialTransport({ path: b1.pair.paths[0] }), {
      backoff: { minMs: 20, maxMs: 100 },
      keepaliveMs: 50,
      reconnect: async () => {
        b2 = await bench();
        pairs.push(b2.pair);
        return openSerialTransport({ path: b2.pair.paths[0] });
      },
    });
    drivers.push(driver);
    await driver.open();
    const edges: ChimeEdge[] = [];
    await driver.watchChime((edge) => edges.push(edge));
    await b1.pair.kill();
    await b1.rig.close().catch(() => undefined);
    await until('the new rig to be told to watch the chime', () =>
      Boolean(b2?.rig.received.some((f) => f.message.type === 'CHIME_WATCH')),
    );
    await b2?.rig.send(0, { type: 'CHIME_EDGE', level: 1, tUs: 7n });
    await until('the chime edge from the new rig', () => edges.length === 1);
    assert.equal((await driver.ping(Uint8Array.of(9))).payload[0], 9);
    await driver.close();
    await b2?.rig.close();
  });
});
