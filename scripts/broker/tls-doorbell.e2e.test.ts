// End to end over the locked-down broker: the real daemon (sim HAL) connects
// over mqtts:// with its device certificate, the hub with the hub certificate.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addDevice, hubCounterPath, hubKeyPath } from '../../hub/hub-state.js';
import { privateKeyToPem, publicKeyToText } from '../../proto/index.js';
import { type Harness, startHarness } from '../../test-support/doorbell-harness.js';
import { runCli } from '../../test-support/run-cli.js';
import { type RunningTlsBroker, startTlsMosquitto } from '../../test-support/tls-mosquitto.js';

describe('a doorbell over mqtts:// with its certificate', () => {
  let broker: RunningTlsBroker;
  let h: Harness;
  before(async () => {
    broker = await startTlsMosquitto({ deviceIds: ['front-door'] });
    assert.match(broker.url, /^mqtts:\/\//);
    h = await startHarness(
      broker.url,
      { deviceId: 'front-door', broker: broker.deviceTls('front-door') },
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
      const rings = h.device.hal.sim?.chimeHistory().filter((c) => c.on).length ?? 0;
      await new Promise((r) => setTimeout(r, 800)); // past the previous ring's pulse and gap
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
