/**
 * `doorbell-hub watch` announces an MQTT 5 Maximum Packet Size (the largest
 * signed envelope on the longest device topic), so a compliant broker drops
 * an oversized message for it instead of sending it. A real Mosquitto that
 * accepts the big publish (no size limits configured), the real CLI, a plain
 * mqtt.js publisher.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { generateSigningKey, publicKeyToText, topicsFor } from '../proto/index.js';
import { runCli, spawnCli } from '../test-support/run-cli.js';

const HUGE_BYTES = 32 * 1024 * 1024;

interface Rejected {
  topic: string;
  kind: string;
}

describe('doorbell-hub watch and a message above its maximum packet size', () => {
  let dir: string;
  let broker: RunningBroker | undefined;
  let publisher: MqttClient | undefined;
  let watch: ChildProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'doorbell-hub-max-packet-'));
    broker = await startMosquitto();
  });
  after(async () => {
    await publisher?.endAsync();
    if (watch && watch.exitCode === null && watch.signalCode === null) {
      const exited = new Promise((resolve) => watch?.once('exit', resolve));
      watch.kill('SIGKILL');
      await exited;
    }
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('is dropped by Mosquitto and never reaches the watcher, while a message after it does', {
    timeout: 60_000,
  }, async () => {
    assert.ok(broker);
    const hubDir = join(dir, 'hub');
    const pinned = await runCli('hub/cli.ts', [
      'add-device',
      'size-door',
      publicKeyToText(generateSigningKey()),
      '--state-dir',
      hubDir,
    ]);
    assert.equal(pinned.code, 0, pinned.stderr);

    const child = spawnCli('hub/cli.ts', ['watch', '--json', '--broker', broker.url, '--state-dir', hubDir]);
    watch = child;
    child.stdin?.end();
    child.stderr?.resume();
    const rejected: Rejected[] = [];
    const listeners = new Set<() => void>();
    let buffered = '';
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const parsed = JSON.parse(line) as { rejected?: Rejected };
        if (parsed.rejected) rejected.push(parsed.rejected);
      }
      for (const l of listeners) l();
    });
    /** Resolves once the watcher rejected a message on `topic`; false after `timeoutMs`. */
    const rejectionOn = (topic: string, timeoutMs: number): Promise<boolean> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (!rejected.some((r) => r.topic === topic)) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(true);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          resolve(false);
        }, timeoutMs);
        listeners.add(check);
        check();
      });

    publisher = await connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: `big-publisher-${process.pid}`,
    });
    // The watcher is subscribed once it answers: each probe names an unpinned device of its own.
    let subscribed = false;
    for (let probe = 1; !subscribed; probe++) {
      assert.ok(probe <= 40, 'doorbell-hub watch never saw a probe');
      const topic = topicsFor(`probe-${probe}-door`).evt;
      await publisher.publishAsync(topic, Buffer.from('probe'), { qos: 1 });
      subscribed = await rejectionOn(topic, 500);
    }

    // One publisher, QoS 1: Mosquitto delivers to the watcher in this order.
    // Resolves on Mosquitto's PUBACK: the broker took the whole message (no size limit of its own).
    await publisher.publishAsync(topicsFor('size-door').evt, Buffer.alloc(HUGE_BYTES, 0x41), { qos: 1 });
    const marker = topicsFor('marker-door').evt;
    await publisher.publishAsync(marker, Buffer.from('marker'), { qos: 1 });
    assert.ok(await rejectionOn(marker, 20_000), 'the message after the huge one reached the watcher');

    assert.deepEqual(
      rejected.filter((r) => r.topic === topicsFor('size-door').evt),
      [],
      'the huge one never reached the watcher',
    );
    assert.match(
      broker.output(),
      /Dropping too large outgoing PUBLISH for doorbell-hub-watch-[0-9a-f]+ \(\d+ bytes\)/,
      'Mosquitto dropped it because of the size the watcher announced',
    );
  });
});
