import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { loadOrCreateSigningKey } from '../proto/index.js';
import { type HubObserver, observeDevices } from '../test-support/hub-observer.js';
import { collect, runCli, spawnCli } from '../test-support/run-cli.js';

let dir: string;
let broker: RunningBroker;
let hub: HubObserver;
let daemon: ReturnType<typeof spawnCli>;
let stopped: Promise<unknown>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-sim-cli-'));
  broker = await startMosquitto();
  const { key } = await loadOrCreateSigningKey(join(dir, 'identity.pem'));
  hub = observeDevices(broker.url, new Map([['sim-door', key]]), silentLogger());
  // `doorbell run` by hand on the sim board, as the README's "Using it" shows.
  daemon = spawnCli('firmware/cli.ts', [
    'run',
    '--hal',
    'sim',
    '--state-dir',
    dir,
    '--broker',
    broker.url,
    '--device-id',
    'sim-door',
  ]);
  stopped = collect(daemon, 120_000);
  await hub.log.waitFor((e) => e.event.kind === 'status', 30_000, 'the daemon online');
});
after(async () => {
  daemon?.kill('SIGTERM');
  await stopped;
  await hub?.stop();
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

const sim = (...args: string[]) => runCli('firmware/cli.ts', ['sim', ...args, '--state-dir', dir]);

test('`doorbell sim press` presses the running sim doorbell: it rings and the hub sees the signed press', async () => {
  const r = await sim('press');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'pressed the button for 100 ms\n');
  await hub.log.waitFor((e) => e.event.kind === 'buttonPressed', 10_000, 'the press');
  await hub.log.waitFor((e) => e.event.kind === 'chimeRang', 10_000, 'the chime');
});

test('`doorbell sim bounce` makes a bouncy contact; `sim state` reads the line levels', async () => {
  const bounced = await sim('bounce', '--edges', '8', '--spacing-ms', '1');
  assert.equal(bounced.code, 0, bounced.stderr);
  assert.equal(bounced.stdout, 'bounced the button contact: 8 edges 1 ms apart\n');
  const state = await sim('state');
  assert.equal(state.code, 0, state.stderr);
  assert.match(state.stdout, /^line levels: button [01], chime [01], led [01]\n$/);
});

test('`doorbell sim hold` holds the button past 5 s: a new doorbell opens its pairing window', async () => {
  const r = await sim('hold');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'held the button for 6000 ms\n');
  await hub.log.waitFor((e) => e.event.pairingWindow?.open === true, 10_000, 'the pairing window');
});

test('without a running sim doorbell, `doorbell sim` says how to start one; a wrong action names the nearest', async () => {
  const r = await runCli('firmware/cli.ts', ['sim', 'press', '--state-dir', join(dir, 'nothing-here')]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /no simulated doorbell answers on \S+sim-wires\.sock .*start one with `npm run doorbell -- run --hal sim`/,
  );
  const wrong = await runCli('firmware/cli.ts', ['sim', 'pres', '--state-dir', dir]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /unknown sim action 'pres'; did you mean 'press'\?/);
});
