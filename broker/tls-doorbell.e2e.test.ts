// End to end over the locked-down broker: the real daemon (sim HAL) connects
// over mqtts:// with its device certificate, the hub with the hub certificate.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addDevice, hubCounterPath, hubKeyPath } from '../hub/hub-state.js';
import { privateKeyToPem, publicKeyToText, type SigningKey } from '../proto/index.js';
import { type Harness, startHarness } from '../test-support/doorbell-harness.js';
import { runCli, spawnCli } from '../test-support/run-cli.js';
import { type RunningTlsBroker, startTlsMosquitto } from '../test-support/tls-mosquitto.js';

describe('a doorbell over mqtts:// with its certificate', () => {
  let broker: RunningTlsBroker;
  let h: Harness;
  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['front-door'] });
    assert.match(broker.url, /^mqtts:\/\//);
    h = await startHarness(
      broker.url,
      // No minimum gap between rings: the CLI's ring may follow the command's as soon as its pulse ended.
      { deviceId: 'front-door', broker: broker.deviceTls('front-door'), hal: { chime: { minGapMs: 0 } } },
      undefined,
      {
        hubTls: broker.hubTls(),
      },
    );
    await h.waitForEvent((e) => e.channel === 'status', 20_000, 'the online status over TLS');
  });
  after(async () => {
    await h?.stop();
    await broker?.stop();
  });

  test('a press reaches the hub, verified', async () => {
    const sim = h.device.hal.sim;
    assert.ok(sim, 'sim backend exposes its wires');
    await sim.press(80);
    const pressed = await h.waitForEvent((e) => e.event.kind === 'buttonPressed', 20_000, 'buttonPressed');
    const rang = await h.waitForEvent((e) => e.event.kind === 'chimeRang', 20_000, 'chimeRang');
    assert.equal(pressed.deviceId, 'front-door');
    assert.equal(pressed.channel, 'evt');
    assert.equal(rang.event.chimeRang?.rang, true);
  });

  test('a hub command reaches the device and its signed result comes back', async () => {
    const { result } = await h.hub.commander.send('front-door', { getStatus: {} }, 20_000);
    assert.equal(result.ok, true, `result: ${JSON.stringify(result)}`);
  });

  test('doorbell-hub ring over mqtts:// with --ca/--cert/--key gets the signed ok result', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'hub-tls-'));
    try {
      await writeFile(hubKeyPath(stateDir), privateKeyToPem(h.hubKey), { mode: 0o600 });
      // One hub key, one counter: the key moves with its counter, as a hub's state would.
      await copyFile(join(h.dir, 'hub-counter'), hubCounterPath(stateDir));
      await addDevice(stateDir, 'front-door', publicKeyToText(h.device.key));
      const tls = broker.hubTls();
      await h.chimeOff(); // the previous test's pulse
      const rings = h.device.hal.sim?.chimeHistory().filter((c) => c.on).length ?? 0;
      const args = [
        'ring',
        'front-door',
        '--broker',
        broker.url,
        '--state-dir',
        stateDir,
        '--timeout-ms',
        '20000',
      ];
      const r = await runCli('hub/cli.ts', [...args, '--ca', tls.ca, '--cert', tls.cert, '--key', tls.key]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { device: 'front-door', ok: true });
      assert.equal(h.device.hal.sim?.chimeHistory().filter((c) => c.on).length, rings + 1);
      const noCert = await runCli('hub/cli.ts', [...args.slice(0, -1), '3000', '--ca', tls.ca]);
      assert.equal(noCert.code, 1, 'without its certificate the hub cannot reach the broker');
      assert.match(noCert.stderr, /cannot reach the broker/);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('doorbell-hub watch over mqtts:// with the hub certificate', () => {
  let broker: RunningTlsBroker;
  let h: Harness;
  let stateDir: string;
  const watchers: ChildProcess[] = [];
  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['front-door'] });
    h = await startHarness(
      broker.url,
      { deviceId: 'front-door', broker: broker.deviceTls('front-door') },
      undefined,
      { hubTls: broker.hubTls() },
    );
    await h.waitForEvent((e) => e.channel === 'status', 20_000, 'the online status over TLS');
    stateDir = await hubState(h.hubKey, h);
  });
  after(async () => {
    for (const w of watchers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await h?.stop();
    await broker?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  const startWatch = (): LineReader => {
    const tls = broker.hubTls();
    const child = spawnCli('hub/cli.ts', [
      'watch',
      '--json',
      '--broker',
      broker.url,
      '--state-dir',
      stateDir,
      '--ca',
      tls.ca,
      '--cert',
      tls.cert,
      '--key',
      tls.key,
    ]);
    watchers.push(child);
    return new LineReader(child);
  };

  test('connects as hub:watch-<hub key id> and gets the event that arrived while it was away', async () => {
    const first = startWatch();
    await first.waitFor((l) => l.kind === 'status', 'the retained status at watch');
    assert.match(broker.output(), new RegExp(`as hub:watch-${h.hubKey.keyId} \\(p5, c0,`));
    first.child.kill('SIGTERM');
    const [code] = await once(first.child, 'exit');
    assert.equal(code, 0, first.stderr);

    // While watch is away: a press, whose event the broker holds in watch's session.
    const seen = h.hub.events.length;
    await h.device.hal.sim?.press(80);
    const pressed = await h.waitForEvent(
      (e) => h.hub.events.indexOf(e) >= seen && e.event.kind === 'buttonPressed',
      20_000,
      'buttonPressed at the test hub',
    );

    const second = startWatch();
    const got = await second.waitFor(
      (l) => l.kind === 'buttonPressed' && l.counter === pressed.counter,
      'the press made while watch was away',
    );
    assert.equal(got.deviceId, 'front-door');
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');
  });
});

/** A hub state directory holding `key` as the hub key, its counter, and the harness's device pinned. */
async function hubState(key: SigningKey, h: Harness): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hub-watch-tls-'));
  await writeFile(hubKeyPath(dir), privateKeyToPem(key), { mode: 0o600 });
  await copyFile(join(h.dir, 'hub-counter'), hubCounterPath(dir));
  await addDevice(dir, 'front-door', publicKeyToText(h.device.key));
  return dir;
}

/** The JSON lines a child prints, with a wait for the first that matches (already printed or future). */
class LineReader {
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  private buffer = '';
  private readonly waiters = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      let nl = this.buffer.indexOf('\n');
      while (nl >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
        nl = this.buffer.indexOf('\n');
      }
      for (const w of this.waiters) w();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    child.once('exit', () => {
      for (const w of this.waiters) w();
    });
  }

  waitFor(match: (l: Record<string, unknown>) => boolean, what: string, timeoutMs = 20_000) {
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(match);
        if (found) {
          done();
          resolve(found);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`watch exited before ${what}: ${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.lines)}\n${this.stderr}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}
