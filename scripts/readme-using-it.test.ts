import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { connectWires, type WireClient } from '../hal/index.js';
import { type DocRun, docCommand, REPO, runDocCommand, withValues } from '../test-support/doc-commands.js';

/**
 * The README's "Using it" section, every command as written, in its order, on a
 * sim board: the doorbell runs from `doorbell.json` in the user's checkout, its
 * pairing code is read, the button is held, the hub pairs, watches, rings and
 * lists keys. The checkout is a directory of links to this repository's files,
 * so that `doorbell.json` sits where the user's would and nothing is written here.
 */

const run = promisify(execFile);
let broker: RunningBroker | undefined;
let dir = '';
let checkout = '';
let env: NodeJS.ProcessEnv = {};
const runs: DocRun[] = [];
let wires: WireClient | undefined;

function doc(text: string): DocRun {
  const r = runDocCommand(text, { cwd: checkout, env });
  runs.push(r);
  return r;
}

async function finished(r: DocRun, timeoutMs = 60_000): Promise<DocRun> {
  const code = await r.exited(timeoutMs);
  assert.equal(code, 0, `exit ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

before(async () => {
  broker = await startMosquitto();
  dir = await mkdtemp(join(tmpdir(), 'doorbell-readme-'));
  checkout = join(dir, 'open-doorbell');
  await run('mkdir', [checkout]);
  for (const name of await readdir(REPO)) {
    if (name !== '.git') await symlink(join(REPO, name), join(checkout, name));
  }
  // The hub's keys and settings in this test's directory, as a user's home would hold them.
  env = {
    XDG_STATE_HOME: join(dir, 'state'),
    DOORBELL_HUB_CONFIG: join(dir, 'config', 'hub.json'),
    DOORBELL_HUB_BROKER: broker.url,
  };
  const config = {
    deviceId: 'front-door',
    stateDir: join(dir, 'board'),
    broker: { url: broker.url },
    hal: { backend: 'sim' },
  };
  await writeFile(join(checkout, 'doorbell.json'), `${JSON.stringify(config, null, 2)}\n`);
});

after(async () => {
  await wires?.close();
  for (const r of runs) await r.stop('SIGKILL');
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Resolves with the doorbell's first status: it has subscribed to its commands by then. */
async function doorbellOnline(url: string): Promise<void> {
  const client = await mqtt.connectAsync(url);
  try {
    const got = new Promise<void>((resolve) => client.once('message', () => resolve()));
    await client.subscribeAsync('doorbell/v1/front-door/status');
    await got;
  } finally {
    await client.endAsync();
  }
}

test("the README's 'Using it' commands run as written: run, identity, hold, pair, watch, ring, keys", async () => {
  const url = broker?.url ?? '';
  const online = doorbellOnline(url);
  const daemon = doc(docCommand('README.md', 'npm run doorbell -- run --config doorbell.json').text);
  await Promise.race([
    online,
    daemon.exited(60_000).then((c) => assert.fail(`the doorbell exited (${c}): ${daemon.stderr}`)),
  ]);

  const identity = await finished(
    doc(docCommand('README.md', 'npm run doorbell -- identity --config doorbell.json').text),
  );
  const code = /odb1:\S+/.exec(identity.stdout)?.[0];
  assert.ok(code, identity.stdout);

  // "hold the doorbell button for 5 s": on the sim board, its wire.
  wires = await connectWires(join(dir, 'board', 'sim-wires.sock'));
  await wires.hold(5500);

  const recipient = (await run('age-keygen', [])).stdout.match(/age1[0-9a-z]+/)?.[0];
  assert.ok(recipient);
  const pair = await finished(
    doc(
      withValues(docCommand('README.md', 'npm run doorbell-hub -- pair --code odb1:...'), {
        'odb1:...': code,
        'age1...': recipient,
      }),
    ),
  );
  assert.match(pair.stdout, /^paired front-door: its key \S+ matches the pairing code and is pinned$/m);
  assert.match(pair.stdout, /^ {2}[0-9a-f]{16} {2}administer {2}owner$/m);
  assert.match(pair.stdout, /^ {2}[0-9a-f]{16} {2}operate {2}hub$/m);
  assert.match(pair.stdout, /footage recipients: 1/);

  const watch = doc(
    withValues(docCommand('README.md', 'npm run doorbell-hub -- watch --broker mqtt://hub.local:1883'), {
      'mqtt://hub.local:1883': url,
    }),
  );
  // The doorbell's retained status arrives first: the watch is subscribed.
  await watch.waitFor(/front-door status ONLINE/, 60_000);
  await wires.press(100);
  await watch.waitFor(/front-door button pressed #\d+ \(verified/, 15_000);

  const chime: boolean[] = [];
  wires.onChime((on) => chime.push(on));
  const ring = await finished(doc(docCommand('README.md', 'npm run doorbell-hub -- ring front-door').text));
  assert.match(ring.stdout, /ok/i);
  assert.equal(ring.stderr.trim(), '', 'a command that works prints only its result');
  assert.ok(chime.includes(true), 'the chime test rang the chime wire');
  const rang = (watch.stdout.match(/front-door chime rang/g) ?? []).length;
  assert.ok(rang >= 1, watch.stdout);

  const keys = await finished(doc(docCommand('README.md', 'npm run doorbell-hub -- keys front-door').text));
  assert.match(keys.stdout, /^[0-9a-f]{16} {2}administer {2}owner {2}paired {2}ed25519:\S{43}$/m);
  assert.match(keys.stdout, /^[0-9a-f]{16} {2}operate {5}hub {4}paired {2}ed25519:\S{43}$/m);
  assert.ok(keys.stdout.includes(`  ${recipient}\n`), "the owner's age recipient is enrolled");

  // A signal to the foreground group ends npm by that signal; the daemon shuts down cleanly.
  await watch.stop('SIGINT');
  await daemon.stop('SIGTERM');
  assert.match(daemon.stderr, /"undelivered":0,"msg":"stopped"/);
});
