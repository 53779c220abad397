// Message size limits of the locked-down broker, on a real Mosquitto.
//
// Every message on the doorbell's topics is one signed envelope of at most
// MAX_ENVELOPE_BYTES, except on a device's own `data` topic (footage chunks), where
// it is MAX_DATA_ENVELOPE_BYTES. The generated mosquitto.conf sets
// `message_size_limit` to the larger (a larger payload is read, then dropped:
// PUBACK "packet too large") and `max_packet_size` a little above it (a larger
// packet is refused as soon as its fixed header is read, before its body is
// received); the doorbell_auth plugin refuses a payload above MAX_ENVELOPE_BYTES
// on every other topic (PUBACK "not authorized").
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { MAX_DATA_ENVELOPE_BYTES, MAX_ENVELOPE_BYTES, topicsFor } from '../proto/index.js';
import { type RunningTlsBroker, startTlsMosquitto } from '../test-support/tls-mosquitto.js';
import { mosquittoPub, mosquittoPubFile, pubackReason, Recorder } from './broker-test-clients.js';
import { MAX_PACKET_SIZE } from './mosquitto-config.js';

const A = topicsFor('dev-a');
const B = topicsFor('dev-b');
const PACKET_TOO_LARGE = 149;
const NOT_AUTHORIZED = 135;

/** MQTT's variable byte integer (remaining length, property lengths). */
function varint(n: number): Buffer {
  const bytes: number[] = [];
  let rest = n;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 128;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

const mqttString = (s: string): Buffer => {
  const body = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([len, body]);
};

/** An MQTT 5 CONNECT with clean start, keepalive 60 s, no properties. */
function connectPacket(clientId: string): Buffer {
  const body = Buffer.concat([mqttString('MQTT'), Buffer.from([5, 0x02, 0, 60, 0]), mqttString(clientId)]);
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
}

/**
 * The integer properties of an MQTT 5 CONNACK (remaining length below 128, as
 * Mosquitto's is), by property id; other properties are skipped.
 */
function connackProperties(connack: Buffer): Map<number, number> {
  // Byte sizes of the integer properties, by id (MQTT 5, 3.1.2.11).
  const sizes = new Map<number, number>([
    ...[0x24, 0x25, 0x28, 0x29, 0x2a].map((id) => [id, 1] as const),
    ...[0x21, 0x22, 0x13].map((id) => [id, 2] as const),
    ...[0x11, 0x27].map((id) => [id, 4] as const),
  ]);
  const props = new Map<number, number>();
  const length = connack[4] ?? 0; // below 128 here: one byte
  let at = 5;
  const end = at + length;
  while (at < end) {
    const id = connack[at++] ?? 0;
    const size = sizes.get(id);
    if (size !== undefined) {
      props.set(id, connack.readUIntBE(at, size));
      at += size;
    } else if ([0x12, 0x1a, 0x1c, 0x1f, 0x03, 0x08, 0x15, 0x09, 0x16].includes(id)) {
      at += 2 + connack.readUInt16BE(at);
    } else if (id === 0x26) {
      at += 2 + connack.readUInt16BE(at);
      at += 2 + connack.readUInt16BE(at);
    } else {
      throw new Error(`unknown CONNACK property 0x${id.toString(16)} in ${connack.toString('hex')}`);
    }
  }
  return props;
}

/** A raw TLS connection that collects every byte the broker sends and notices when it closes. */
class RawClient {
  received = Buffer.alloc(0);
  closed = false;
  private readonly waiters = new Set<() => void>();
  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static open(port: number, tls: { ca: string; cert: string; key: string }): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        ca: readFileSync(tls.ca),
        cert: readFileSync(tls.cert),
        key: readFileSync(tls.key),
      });
      socket.once('secureConnect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  /** Resolves once `ready()` holds (checked on every byte and on close); rejects after `timeoutMs`. */
  until(ready: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ready()) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; received ${this.received.toString('hex')}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}

describe('message size limits on the locked-down broker', () => {
  let broker: RunningTlsBroker;
  let hub: Recorder;
  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['dev-a', 'dev-b'] });
    hub = await Recorder.connect(broker.url, broker.hubTls(), `hub:test-${process.pid}`);
    await hub.subscribe([A.evt, A.data, B.data]);
  });
  after(async () => {
    await hub?.end();
    await broker?.stop();
    rmSync(files, { recursive: true, force: true });
  });
  const files = mkdtempSync(join(tmpdir(), 'message-size-'));
  const payloadFile = (name: string, bytes: number, fill: string): string => {
    const path = join(files, name);
    writeFileSync(path, fill.repeat(bytes));
    return path;
  };

  test('a payload of MAX_ENVELOPE_BYTES is delivered; one byte more is refused (PUBACK 135, the plugin) and never reaches the subscriber', async () => {
    const fits = 'a'.repeat(MAX_ENVELOPE_BYTES);
    const ok = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.evt, fits);
    assert.equal(pubackReason(ok), 0, ok.stdout);
    await hub.waitFor((m) => m.payload === fits, 'the envelope-sized payload');

    const over = 'b'.repeat(MAX_ENVELOPE_BYTES + 1);
    const dropped = await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.evt, over);
    assert.equal(pubackReason(dropped), NOT_AUTHORIZED, dropped.stdout);
    assert.match(
      broker.output(),
      /doorbell_auth: refused a 16385-byte message from dev-a on doorbell\/v1\/dev-a\/evt/,
    );
    // Delivery is in order: once the sentinel is in, the oversized message would be too.
    await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.evt, 'sentinel-after-oversized');
    await hub.waitFor((m) => m.payload === 'sentinel-after-oversized', 'the sentinel');
    assert.ok(!hub.received.some((m) => m.payload.startsWith('b')), 'the oversized payload was delivered');
  });

  test("a device's own data topic carries up to MAX_DATA_ENVELOPE_BYTES; one byte more is dropped (PUBACK 149), and no other device's data topic takes a large payload", async () => {
    const fits = payloadFile('fits', MAX_DATA_ENVELOPE_BYTES, 'd');
    const ok = await mosquittoPubFile(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.data, fits);
    assert.equal(pubackReason(ok), 0, ok.stdout);
    await hub.waitFor(
      (m) => m.topic === A.data && m.payload.length === MAX_DATA_ENVELOPE_BYTES,
      'the data-sized payload on the data topic',
    );
    const over = payloadFile('over', MAX_DATA_ENVELOPE_BYTES + 1, 'e');
    const dropped = await mosquittoPubFile(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.data, over);
    assert.equal(pubackReason(dropped), PACKET_TOO_LARGE, dropped.stdout);
    // dev-a on dev-b's data topic: the ACL refuses it whatever its size.
    const foreign = payloadFile('foreign', MAX_ENVELOPE_BYTES + 1, 'f');
    const refused = await mosquittoPubFile(broker.port, broker.deviceTls('dev-a'), 'dev-a', B.data, foreign);
    assert.equal(pubackReason(refused), NOT_AUTHORIZED, refused.stdout);
    await mosquittoPub(broker.port, broker.deviceTls('dev-a'), 'dev-a', A.data, 'sentinel-after-data');
    await hub.waitFor((m) => m.payload === 'sentinel-after-data', 'the sentinel');
    assert.ok(
      !hub.received.some((m) => m.payload.startsWith('e') || m.payload.startsWith('f')),
      'an oversized or foreign payload was delivered',
    );
  });

  test('a PUBLISH whose header announces 200 MiB is refused at the header (DISCONNECT 149), before its body is sent', async () => {
    const raw = await RawClient.open(broker.port, broker.deviceTls('dev-a'));
    try {
      raw.socket.write(connectPacket('dev-a'));
      await raw.until(
        () => raw.received.length >= 2 && raw.received.length >= 2 + (raw.received[1] ?? 0),
        'CONNACK',
      );
      assert.equal(raw.received[0], 0x20, 'CONNACK');
      assert.equal(raw.received[3], 0, `CONNACK reason ${raw.received[3]}`);
      // MQTT 5 clients are told the limit: CONNACK's Maximum Packet Size property (0x27).
      const connack = raw.received.subarray(0, 2 + (raw.received[1] ?? 0));
      assert.equal(connackProperties(connack).get(0x27), MAX_PACKET_SIZE, connack.toString('hex'));
      raw.received = Buffer.alloc(0);

      // The fixed header and topic of a QoS 0 PUBLISH of 200 MiB; none of the body follows.
      const topic = mqttString(A.evt);
      const announced = 200 * 1024 * 1024;
      raw.socket.write(Buffer.concat([Buffer.from([0x30]), varint(announced), topic, Buffer.from([0])]));
      await raw.until(() => raw.closed, 'the broker to close the connection');
      assert.equal(raw.received[0], 0xe0, `DISCONNECT expected, got ${raw.received.toString('hex')}`);
      assert.equal(raw.received[2], PACKET_TOO_LARGE, `DISCONNECT reason ${raw.received[2]}`);
    } finally {
      raw.socket.destroy();
    }
    assert.match(broker.output(), /Client dev-a disconnected due to oversize packet/);
  });
});
