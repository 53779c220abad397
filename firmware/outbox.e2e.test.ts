import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { freePort } from '../common/free-port.js';
import { silentLogger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt-connection.js';
import { connectWires, type WireClient } from '../hal/index.js';
import { EventWatcher, type VerifiedEvent } from '../hub/event-watcher.js';
import { loadSigningKey } from '../proto/index.js';
import { spawnCli } from '../test-support/run-cli.js';
import { waitFor } from '../test-support/wait-for.js';
import { identityPath } from './root.js';

const DEVICE = 'outbox-door';
const PRESSES_PER_RUN = 500;

/** Starts the real daemon; resolves once its sim wire socket accepts a connection. */
async function startDaemon(
  configPath: string,
  socket: string,
): Promise<{ child: ChildProcess; stderr: () => string; wires: WireClient }> {
  const child = spawnCli('firmware/cli.ts', ['run', '--config', configPath]);
  child.stdin?.end();
  let err = '';
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    // After a kill -9 the old socket file is still there, refusing connections.
    const wires = await connectWires(socket).catch(() => undefined);
    if (wires) return { child, stderr: () => err, wires };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the daemon did not start:\n${err}`);
    }
    await sleep(20);
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Presses until the daemon has recognised exactly `target` presses (it logs
 * each one after both of its events are queued). Presses are short, so one
 * can occasionally merge with the next under load; the deficit is pressed again.
 */
async function pressUntil(wires: WireClient, recognised: () => number, target: number): Promise<void> {
  try {
    for (let round = 0; recognised() < target; round++) {
      assert.ok(round < 20, `only ${recognised()} of ${target} presses recognised`);
      for (let i = recognised(); i < target; i++) {
        await wires.press(7, 7); // released for longer than minPressMs: each press stands on its own
      }
      // The daemon logs each press once both its events are queued; a merged press never is.
      await waitFor(() => recognised() >= target, `${target} presses logged`, 2000).catch(() => undefined);
    }
  } finally {
    await wires.close();
  }
}

const recognisedIn = (stderr: () => string) => (): number =>
  stderr().split('"msg":"button pressed"').length - 1;

describe('the durable outbox across a broker outage and a kill -9', () => {
  let dir: string;
  let broker: RunningBroker | undefined;
  let hub: MqttConnection | undefined;
  const daemons: ChildProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'doorbell-outbox-e2e-'));
  });
  after(async () => {
    for (const child of daemons) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGCONT');
        child.kill('SIGKILL');
        await exited(child);
      }
    }
    await hub?.stop();
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('1,000 presses while the broker is down, kill -9 halfway: the hub gets each once, in order', async () => {
    const port = await freePort(); // nothing listens here until the broker starts
    const stateDir = join(dir, 'device');
    const configPath = join(dir, 'doorbell.json');
    await writeFile(
      configPath,
      JSON.stringify({
        deviceId: DEVICE,
        stateDir,
        broker: { url: `mqtt://127.0.0.1:${port}`, reconnect: { minMs: 100, maxMs: 400 } },
        events: { outboxMax: 5_000 },
        hal: {
          backend: 'sim',
          button: { minPressMs: 5, lockoutMs: 0 },
          chime: { pulseMs: 10, minGapMs: 0 },
        },
        log: { level: 'info' },
      }),
    );
    const socket = join(stateDir, 'sim-wires.sock');

    const first = await startDaemon(configPath, socket);
    daemons.push(first.child);
    await pressUntil(first.wires, recognisedIn(first.stderr), PRESSES_PER_RUN);
    assert.equal(recognisedIn(first.stderr)(), PRESSES_PER_RUN);
    first.child.kill('SIGKILL');
    await exited(first.child);
    assert.equal(first.child.signalCode, 'SIGKILL');

    const second = await startDaemon(configPath, socket);
    daemons.push(second.child);
    await pressUntil(second.wires, recognisedIn(second.stderr), PRESSES_PER_RUN);
    assert.equal(recognisedIn(second.stderr)(), PRESSES_PER_RUN);

    // Freeze the daemon so the hub is subscribed before the device can connect.
    const pid = second.child.pid;
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGSTOP');
    // A backlog of 2,000 reaches the broker faster than one subscriber verifies it: lift
    // Mosquitto's default per-client queue of 1,000, which would drop the overflow silently.
    broker = await startMosquitto({ port, extraConfig: ['max_queued_messages 0'] });
    const key = await loadSigningKey(identityPath(stateDir));
    const logger = silentLogger();
    const watcher = new EventWatcher(new Map([[DEVICE, key]]), logger);
    const events: VerifiedEvent[] = [];
    const rejected: string[] = [];
    let raw = 0;
    watcher.on('event', (e) => {
      if (e.channel === 'evt') events.push(e);
    });
    watcher.on('rejected', (r) => rejected.push(`${r.kind}: ${r.reason}`));
    const connection = new MqttConnection({
      url: broker.url,
      clientId: `outbox-e2e-hub-${process.pid}`,
      logger,
      subscriptions: EventWatcher.subscriptions,
      backoff: { minMs: 100, maxMs: 400 },
    });
    hub = connection;
    connection.on('message', (topic, payload, packet) => {
      if (topic.endsWith('/evt')) raw += 1;
      watcher.handle(topic, payload, packet.retain);
    });
    const subscribed = new Promise<void>((resolve) => connection.once('subscribed', () => resolve()));
    connection.start();
    await subscribed;
    process.kill(pid, 'SIGCONT');

    const pressed = () => events.filter((e) => e.event.kind === 'buttonPressed');
    // The last press's ChimeRang is the last event either daemon queued: the outbox sends in
    // order, so anything extra (a press twice) would have arrived before it.
    const rang = () => events.filter((e) => e.event.kind === 'chimeRang').length;
    await waitFor(() => rang() >= 2 * PRESSES_PER_RUN, 'the last ChimeRang', 30_000, 20);

    const seqs = pressed().map((e) => Number(e.event.buttonPressed?.pressSeq));
    assert.equal(seqs.length, 2 * PRESSES_PER_RUN, 'ButtonPressed events received');
    const expected = [...Array.from({ length: PRESSES_PER_RUN }, (_, i) => i + 1)];
    assert.deepEqual(seqs, [...expected, ...expected], 'every press once, in order, across the restart');
    const counters = events.map((e) => e.counter);
    assert.equal(new Set(counters).size, counters.length, 'no counter twice');
    for (let i = 1; i < counters.length; i++) {
      assert.ok(
        (counters[i] as number) > (counters[i - 1] as number),
        `counters increase in arrival order (${counters[i - 1]} then ${counters[i]} at ${i})`,
      );
    }
    assert.equal(
      events.filter((e) => e.event.kind === 'chimeRang').length,
      2 * PRESSES_PER_RUN,
      'each press also delivered its ChimeRang',
    );
    assert.ok(!events.some((e) => e.event.kind === 'eventsDropped'), 'nothing was dropped');
    assert.deepEqual(rejected, []);
    assert.ok(raw >= events.length, 'duplicates, if any, were removed by the hub, not lost');
  });
});
