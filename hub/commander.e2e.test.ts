import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { CounterStore, doorbell } from '../proto/index.js';
import { type Harness, startHarness } from '../test-support/doorbell-harness.js';
import { Commander } from './commander.js';

let broker: RunningBroker;
let h: Harness;
let dir: string;

before(async () => {
  broker = await startMosquitto();
  h = await startHarness(broker.url);
  dir = await mkdtemp(join(tmpdir(), 'doorbell-commander-'));
});
after(async () => {
  await h?.stop();
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a hub whose counter is behind the device (a lost counter file) skips ahead on the signed REPLAY and gets through', async () => {
  // The harness's commander has used counters from 1; move the device's window well ahead.
  const ahead = await CounterStore.open(join(dir, 'ahead'));
  ahead.skipTo(5_000);
  const first = await new Commander({
    connection: h.hub.connection,
    watcher: h.hub.watcher,
    key: h.hubKey,
    counters: ahead,
    logger: silentLogger(),
  }).send('front-door', { getStatus: {} }, 5000);
  assert.equal(first.result.ok, true);

  // The same key with a fresh counter file starts at 1: far behind.
  const behind = await CounterStore.open(join(dir, 'behind'));
  const before = h.hub.events.filter(
    (e) => e.event.commandResult?.errorKind === doorbell.v1.ErrorKind.REPLAY,
  );
  const answer = await new Commander({
    connection: h.hub.connection,
    watcher: h.hub.watcher,
    key: h.hubKey,
    counters: behind,
    logger: silentLogger(),
  }).send('front-door', { getStatus: {} }, 5000);
  assert.equal(answer.result.ok, true, JSON.stringify(answer.result));
  const refusals = h.hub.events.filter(
    (e) => e.event.commandResult?.errorKind === doorbell.v1.ErrorKind.REPLAY,
  );
  assert.equal(refusals.length, before.length + 1, 'one signed REPLAY, then success');
  assert.ok(Number(refusals.at(-1)?.event.commandResult?.nextCounter) > 5_000, 'it named the next counter');
  assert.ok(behind.next() > 5_000, 'the hub counter moved past the device window for good');
});
