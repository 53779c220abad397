/**
 * The real daemon (`doorbell run`) behind a proxy that loses packets on a
 * connection it keeps open, as a broker overwhelmed by a flood of commands
 * does (Mosquitto drops what it queues for a client beyond
 * `max_queued_messages`, PUBACKs included, and still answers pings, so the
 * keepalive never notices). The hub watches Mosquitto directly.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync } from 'mqtt';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { PacketType } from '../common/mqtt-frames.js';
import { doorbell, loadOrCreateSigningKey, type SigningKey, topicsFor, verifyKeyOf } from '../proto/index.js';
import { type DaemonProcess, startDaemonProcess } from '../test-support/daemon-process.js';
import { type HubObserver, observeDevices } from '../test-support/hub-observer.js';
import { type MqttProxy, startMqttProxy } from '../test-support/mqtt-proxy.js';
import { identityPath } from './root.js';

const TIMEOUT_MS = 60_000;

/** The event counter inside a raw envelope, as the hub's raw listener sees it. */
function counterOf(payload: Uint8Array): number | undefined {
  try {
    return doorbell.v1.Event.decode(doorbell.v1.Envelope.decode(payload).body).header?.counter ?? undefined;
  } catch {
    return undefined;
  }
}

describe('the event channel when the broker link loses packets but stays open', () => {
  let dir: string;
  let broker: RunningBroker | undefined;
  let proxy: MqttProxy | undefined;
  const hubs: HubObserver[] = [];
  const daemons: DaemonProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'doorbell-stall-e2e-'));
    broker = await startMosquitto();
    proxy = await startMqttProxy(broker.port);
  });
  after(async () => {
    for (const d of daemons) {
      if (d.alive) d.child.kill('SIGKILL');
      await d.exited;
      await d.wires.close().catch(() => undefined);
    }
    for (const h of hubs) await h.stop();
    await proxy?.stop();
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A device whose broker is the proxy, and a hub on Mosquitto itself counting every raw copy of each event. */
  async function setUp(name: string): Promise<{
    configPath: string;
    socket: string;
    hub: HubObserver;
    copies: Map<number, number>;
    start: () => Promise<DaemonProcess>;
  }> {
    assert.ok(broker && proxy);
    const stateDir = join(dir, name, 'state');
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const key: SigningKey = (await loadOrCreateSigningKey(identityPath(stateDir))).key;
    const configPath = join(dir, name, 'config.json');
    const socket = join(dir, name, 'wires.sock');
    await writeFile(
      configPath,
      JSON.stringify({
        deviceId: name,
        stateDir,
        broker: { url: proxy.url, reconnect: { minMs: 100, maxMs: 400 }, ackTimeoutMs: 1_000 },
        // No heartbeat during the test: every QoS 1 publish of the device is an outbox event or a status change.
        events: { heartbeatS: 3_600 },
        hal: { backend: 'sim', sim: { socket } },
        log: { level: 'debug' },
      }),
    );
    const hub = observeDevices(broker.url, new Map([[name, verifyKeyOf(key)]]), silentLogger());
    hubs.push(hub);
    const copies = new Map<number, number>();
    const evt = topicsFor(name).evt;
    hub.connection.on('message', (topic, payload) => {
      const counter = topic === evt ? counterOf(payload) : undefined;
      if (counter !== undefined) copies.set(counter, (copies.get(counter) ?? 0) + 1);
    });
    const start = async (): Promise<DaemonProcess> => {
      const online = hub.log.events.length;
      const d = await startDaemonProcess(configPath, socket);
      daemons.push(d);
      await hub.log.waitFor(
        (e) =>
          hub.log.events.indexOf(e) >= online &&
          e.event.status?.state === doorbell.v1.Status.State.ONLINE &&
          !e.retained,
        20_000,
        'the doorbell online',
      );
      return d;
    };
    return { configPath, socket, hub, copies, start };
  }

  test('Mosquitto drops the PUBACK it owes a client whose outgoing queue is full (max_queued_messages), and the connection stays open', {
    timeout: TIMEOUT_MS,
  }, async () => {
    assert.ok(broker);
    const victim = await connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: 'flooded',
      reconnectPeriod: 0,
    });
    const flooder = await connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: 'flooder',
      reconnectPeriod: 0,
    });
    try {
      await victim.subscribeAsync('flood', { qos: 0 });
      const received: string[] = [];
      victim.on('message', (_topic, payload) => received.push(payload.toString()));
      // The victim stops reading, as a daemon busy refusing a flood of commands falls behind.
      victim.stream.pause();
      const filler = Buffer.alloc(1024, 0x41);
      while (!/Outgoing messages are being dropped for client flooded/.test(broker.output())) {
        for (let i = 0; i < 1_000; i++) flooder.publish('flood', filler, { qos: 0 });
        await sleep(20);
      }
      let acknowledged = false;
      victim.publish('victim/evt', 'event', { qos: 1 }, (err) => {
        acknowledged = !err;
      });
      victim.stream.resume();
      // Whatever the broker queued for the victim before a marker arrives before the marker.
      for (let n = 0; !received.includes('marker'); n++) {
        assert.ok(n < 500, 'no marker got through');
        await flooder.publishAsync('flood', 'marker', { qos: 0 });
        await sleep(20);
      }
      assert.equal(acknowledged, false, 'the PUBACK was dropped');
      assert.equal(victim.connected, true, 'and the connection looks healthy');
    } finally {
      victim.end(true);
      await flooder.endAsync();
    }
  });

  test('an event whose PUBACK never comes is sent again on a new connection, reaches the hub, and later presses follow', {
    timeout: TIMEOUT_MS,
  }, async () => {
    assert.ok(proxy);
    const { hub, copies, start } = await setUp('stall-resend');
    const daemon = await start();
    const connectionsBefore = proxy.connections;

    // The press's event leaves the device and is lost before the broker: no PUBACK can come.
    // Pings still pass both ways, so the connection looks healthy.
    proxy.dropPackets({ toBroker: (type) => type === PacketType.PUBLISH });
    await daemon.wires.press(80);
    await proxy.waitDropped('toBroker', PacketType.PUBLISH, 1);
    proxy.dropPackets(undefined);

    const pressed = await hub.log.waitFor(
      (e) => e.event.buttonPressed?.pressSeq === 1,
      20_000,
      'the first press, sent again',
    );
    assert.equal(proxy.connections, connectionsBefore + 1, 'it was sent again on a new connection');
    assert.equal(copies.get(pressed.counter), 1, 'the lost copy never reached the broker');
    await hub.log.waitFor((e) => e.event.kind === 'chimeRang', 10_000, 'the first ChimeRang');

    await daemon.wires.press(80);
    await hub.log.waitFor(
      (e) => e.event.buttonPressed?.pressSeq === 2,
      10_000,
      'the second press, after the resend',
    );
    assert.match(daemon.stderr(), /no PUBACK/);
    assert.equal(await daemon.stop(), 0);
  });

  test('doorbell run exits on SIGTERM while the broker acknowledges nothing, and the unacknowledged events go out after the restart', {
    timeout: TIMEOUT_MS,
  }, async () => {
    assert.ok(proxy);
    const { hub, copies, start } = await setUp('stall-stop');
    const daemon = await start();

    // The broker answers pings and nothing else: no PUBACK for the press, none for OFFLINE.
    proxy.dropPackets({ toClient: (type) => type !== PacketType.PINGRESP });
    await daemon.wires.press(80);
    const pressed = await hub.log.waitFor(
      (e) => e.event.buttonPressed?.pressSeq === 1,
      10_000,
      'the press (its PUBACK is lost)',
    );
    await proxy.waitDropped('toClient', PacketType.PUBACK, 1);

    daemon.child.kill('SIGTERM');
    const code = await daemon.exited;
    assert.equal(code, 0, `a clean exit\n${daemon.stderr().slice(-3000)}`);
    assert.match(daemon.stderr(), /"msg":"stopped"/);

    proxy.dropPackets(undefined);
    const again = await start();
    await hub.log.waitFor(
      (e) => e.event.kind === 'chimeRang',
      20_000,
      "the press's ChimeRang after the restart",
    );
    assert.equal(copies.get(pressed.counter), 2, 'the unacknowledged press was sent again after the restart');
    assert.equal(
      hub.log.events.filter((e) => e.event.buttonPressed?.pressSeq === 1).length,
      1,
      'the hub dropped the second copy',
    );
    assert.equal(await again.stop(), 0);
  });
});
