import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { connectWires } from '../hal/sim/wire-client.js';
import { generateSigningKey, loadSigningKey, verifyKeyOf } from '../proto/index.js';
import { auditOrigin, auditVerifier } from '../proto/tlog/audit.js';
import { openNote, parseCheckpoint } from '../proto/tlog/note.js';
import { observeDevices } from '../test-support/hub-observer.js';
import { collect, runCli, spawnCli } from '../test-support/run-cli.js';
import { settle, waitFor } from '../test-support/wait-for.js';
import { STATE_ENTRIES } from './factory-reset.js';
import { TrustStore } from './trust/trust-store.js';

let dir: string;
let broker: RunningBroker;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-reset-'));
  broker = await startMosquitto();
});
after(async () => {
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A state directory with an identity, a paired owner and a foreign file the reset must not touch. */
async function pairedState(stateDir: string): Promise<string> {
  const identity = await runCli('firmware/cli.ts', ['identity', '--no-qr', '--state-dir', stateDir]);
  assert.equal(identity.code, 0, identity.stderr);
  const store = await TrustStore.open(stateDir, [], { logger: silentLogger() });
  await store.pair({ owner: generateSigningKey(), ownerLabel: 'owner', recipients: [] });
  await writeFile(join(stateDir, 'notes.txt'), 'not ours');
  return readFile(join(stateDir, 'identity.pem'), 'utf8');
}

/** A paired doorbell daemon (sim hardware, 1 s pairing hold, 2 s reset hold), its sim wires ready. */
async function startHoldDaemon(name: string) {
  const stateDir = join(dir, name);
  const identity = await pairedState(stateDir);
  const config = join(dir, `${name}.json`);
  await writeFile(
    config,
    JSON.stringify({
      stateDir,
      broker: { url: broker.url },
      hal: { backend: 'sim', button: { holdMs: 1000 } },
      trust: { factoryResetHoldMs: 2000 },
    }),
  );
  const daemon = spawnCli('firmware/cli.ts', ['run', '--config', config]);
  const done = collect(daemon, 60_000);
  const socket = join(stateDir, 'sim-wires.sock');
  try {
    await waitFor(() => existsSync(socket), 'the sim wires', 20_000, 50);
  } catch (err) {
    daemon.kill('SIGTERM');
    await done;
    throw err;
  }
  return { stateDir, identity, daemon, done, socket };
}

describe('factory reset', () => {
  test('doorbell factory-reset asks first, refuses while the daemon runs, then wipes only its own files', async () => {
    const stateDir = join(dir, 'cli');
    const identity = await pairedState(stateDir);
    const noTerminal = await runCli('firmware/cli.ts', ['factory-reset', '--state-dir', stateDir]);
    assert.equal(noTerminal.code, 2);
    assert.match(noTerminal.stderr, /--yes/);
    assert.equal(
      await readFile(join(stateDir, 'identity.pem'), 'utf8'),
      identity,
      'nothing wiped unconfirmed',
    );

    const daemon = spawnCli('firmware/cli.ts', [
      'run',
      '--broker',
      broker.url,
      '--state-dir',
      stateDir,
      '--hal',
      'sim',
    ]);
    const done = collect(daemon, 60_000);
    try {
      await waitFor(() => existsSync(join(stateDir, 'daemon.pid')), 'the daemon pid file', 20_000, 50);
      const refused = await runCli('firmware/cli.ts', ['factory-reset', '--yes', '--state-dir', stateDir]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /daemon is running \(pid \d+\)/);
    } finally {
      daemon.kill('SIGTERM');
    }
    assert.equal((await done).code, 0);

    const wiped = await runCli('firmware/cli.ts', ['factory-reset', '--yes', '--state-dir', stateDir]);
    assert.equal(wiped.code, 0, wiped.stderr);
    assert.match(wiped.stdout, /identity\.pem.*enrolment\.json/);
    for (const entry of STATE_ENTRIES) assert.equal(existsSync(join(stateDir, entry)), false, entry);
    assert.equal(await readFile(join(stateDir, 'notes.txt'), 'utf8'), 'not ours');
  });

  test('holding the button from start-up for the reset time wipes the state and starts afresh', async () => {
    const { stateDir, identity, daemon, done, socket } = await startHoldDaemon('hold');
    // The hub's view of the doorbell before the reset, under its old key.
    const old = await loadSigningKey(join(stateDir, 'identity.pem'));
    const deviceId = `doorbell-${old.keyId.slice(0, 8)}`;
    const hub = observeDevices(broker.url, new Map([[deviceId, verifyKeyOf(old)]]), silentLogger());
    try {
      const wires = await connectWires(socket);
      // The reset restarts the HAL mid-hold, which closes this wire connection.
      const holding = wires.hold(2500).catch((err: Error) => assert.match(err.message, /closed/));
      await waitFor(
        async () =>
          (await readFile(join(stateDir, 'identity.pem'), 'utf8').catch(() => identity)) !== identity,
        'a new identity',
        20_000,
        50,
      );
      await holding;
      assert.equal(existsSync(join(stateDir, 'enrolment.json')), false, 'the owner is gone');
      await waitFor(() => existsSync(socket), 'the sim wires again', 20_000, 50);
      // The fresh doorbell works: a short press now is only a press.
      const again = await connectWires(socket);
      await again.press(80);
      await again.close();
      // Before the wipe, the old log's last checkpoint, signed with the old key, said so.
      const last = await hub.log.waitFor(
        (e) => e.event.auditCheckpoint?.note?.includes('\nended: factory-reset\n') === true,
        10_000,
        'the last audit checkpoint',
      );
      const text = openNote(
        last.event.auditCheckpoint?.note ?? '',
        auditVerifier(deviceId, verifyKeyOf(old)),
      );
      const cp = parseCheckpoint(text);
      assert.equal(cp.origin, auditOrigin(deviceId, old.keyId));
      assert.deepEqual(cp.extensions, ['ended: factory-reset']);
    } finally {
      daemon.kill('SIGTERM');
      await hub.stop();
    }
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /factory reset by button hold/);
    assert.equal(await readFile(join(stateDir, 'notes.txt'), 'utf8'), 'not ours');
  });

  test('on a paired doorbell, a hold released before the reset time is only a pairing request and resets nothing', async () => {
    const { stateDir, identity, daemon, done, socket } = await startHoldDaemon('short');
    try {
      const wires = await connectWires(socket);
      await wires.hold(1500);
      await wires.close();
      // Nothing to wait on for a reset that must not happen: time runs past the reset hold
      // (2 s from the press) before the daemon is stopped.
      await settle(1000);
    } finally {
      daemon.kill('SIGTERM');
    }
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /button held: pairing requested/);
    assert.match(result.stderr, /paired doorbell: the pairing window stays closed/);
    assert.doesNotMatch(result.stderr, /factory reset/);
    assert.equal(await readFile(join(stateDir, 'identity.pem'), 'utf8'), identity);
    assert.equal(existsSync(join(stateDir, 'enrolment.json')), true);
  });
});
