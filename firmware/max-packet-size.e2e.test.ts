/**
 * The daemon announces an MQTT 5 Maximum Packet Size (the largest signed
 * envelope on its command topic), so a compliant broker never sends it a
 * larger packet: an oversized command is dropped at the broker instead of
 * being received whole and refused. A real `doorbell run`, a real Mosquitto
 * that accepts the big publish (no size limits configured), a plain mqtt.js
 * publisher and a verifying hub.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import {
  doorbell,
  generateSigningKey,
  loadOrCreateSigningKey,
  newCorrelationId,
  publicKeyToText,
  sealCommand,
  topicsFor,
  verifyKeyOf,
} from '../proto/index.js';
import { type DaemonProcess, startDaemonProcess } from '../test-support/daemon-process.js';
import { type HubObserver, observeDevices } from '../test-support/hub-observer.js';
import { identityPath } from './root.js';

const DEVICE = 'size-door';
const TOPICS = topicsFor(DEVICE);
const HUGE_BYTES = 32 * 1024 * 1024;

/** The peak resident set size of a process, in bytes (Linux). */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  assert.ok(kb, 'VmHWM in /proc/<pid>/status');
  return Number(kb) * 1024;
}

describe('a command above the announced maximum packet size', () => {
  let dir: string;
  let broker: RunningBroker | undefined;
  let hub: HubObserver | undefined;
  let daemon: DaemonProcess | undefined;
  let publisher: MqttClient | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'doorbell-max-packet-'));
    broker = await startMosquitto();
  });
  after(async () => {
    await publisher?.endAsync();
    await daemon?.stop();
    await hub?.stop();
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('is dropped by Mosquitto and never reaches the daemon, while a valid command after it is answered', {
    timeout: 60_000,
  }, async () => {
    assert.ok(broker);
    const stateDir = join(dir, 'state');
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const deviceKey = (await loadOrCreateSigningKey(identityPath(stateDir))).key;
    const hubKey = generateSigningKey();
    const configPath = join(dir, 'config.json');
    const socket = join(dir, 'wires.sock');
    await writeFile(
      configPath,
      JSON.stringify({
        deviceId: DEVICE,
        stateDir,
        broker: { url: broker.url, reconnect: { minMs: 100, maxMs: 400 } },
        trust: { hubKeys: [publicKeyToText(hubKey)] },
        hal: { backend: 'sim', sim: { socket } },
        log: { level: 'debug' },
      }),
    );
    hub = observeDevices(broker.url, new Map([[DEVICE, verifyKeyOf(deviceKey)]]), silentLogger());
    daemon = await startDaemonProcess(configPath, socket);
    const h = hub;
    await h.log.waitFor(
      (e) => e.event.status?.state === doorbell.v1.Status.State.ONLINE && !e.retained,
      20_000,
      'the doorbell online',
    );
    const pid = daemon.child.pid;
    assert.ok(pid !== undefined);
    const peakBefore = await peakRss(pid);

    // One publisher, QoS 1: Mosquitto delivers its messages to the device in this order.
    publisher = await connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: `big-publisher-${process.pid}`,
    });
    // Resolves on Mosquitto's PUBACK: the broker took the whole message (no size limit of its own).
    await publisher.publishAsync(TOPICS.cmd, Buffer.alloc(HUGE_BYTES, 0x41), { qos: 1 });
    // A small undecodable one: the control that refusals on this topic are logged.
    await publisher.publishAsync(TOPICS.cmd, Buffer.alloc(100, 0x41), { qos: 1 });
    const now = Date.now();
    const correlationId = newCorrelationId();
    const valid = sealCommand(
      {
        header: {
          deviceId: DEVICE,
          topic: TOPICS.cmd,
          counter: 1,
          issuedAtMs: now,
          expiresAtMs: now + 20_000,
          correlationId,
        },
        getStatus: {},
      },
      hubKey,
    );
    await publisher.publishAsync(TOPICS.cmd, Buffer.from(valid), { qos: 1 });
    const answer = await h.log.result(correlationId, 20_000);
    assert.equal(answer.event.commandResult?.ok, true);

    const log = daemon.stderr();
    assert.match(log, /"bytes":100,[^\n]*"msg":"command rejected"/, 'the small one was refused and logged');
    assert.doesNotMatch(log, new RegExp(`"bytes":${HUGE_BYTES}`), 'the huge one never reached the daemon');
    const dropped = new RegExp(`Dropping too large outgoing PUBLISH for ${DEVICE} \\((\\d+) bytes\\)`).exec(
      broker.output(),
    );
    assert.ok(dropped, `Mosquitto dropped it because of the size the daemon announced:\n${broker.output()}`);
    assert.ok(Number(dropped[1]) > HUGE_BYTES);
    const grown = (await peakRss(pid)) - peakBefore;
    assert.ok(grown < HUGE_BYTES / 4, `peak resident memory grew by ${grown} bytes`);
  });
});
