import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { connectWires, type WireClient } from '../hal/sim/wire-client.js';
import { Commander } from '../hub/commander.js';
import { loadDeviceEpochs, ownerKeyPath } from '../hub/hub-state.js';
import {
  CounterStore,
  doorbell,
  formatPairingCode,
  generateSigningKey,
  loadSigningKey,
  newCorrelationId,
  parsePairingCode,
  publicKeyToText,
  type SigningKey,
  sealCommand,
  topicsFor,
} from '../proto/index.js';
import { type Harness, startHarness } from '../test-support/doorbell-harness.js';
import { runCli } from '../test-support/run-cli.js';

const { ErrorKind, Role } = doorbell.v1;
const run = promisify(execFile);

let ageDir: string;
let recipient: string;

before(async () => {
  ageDir = await mkdtemp(join(tmpdir(), 'doorbell-trust-age-'));
  // An age recipient made by the age tools themselves.
  await run('age-keygen', ['-o', join(ageDir, 'owner-age.txt')]);
  recipient =
    /public key: (age1[0-9a-z]+)/.exec(await readFile(join(ageDir, 'owner-age.txt'), 'utf8'))?.[1] ?? '';
  assert.match(recipient, /^age1/);
});

after(async () => {
  await rm(ageDir, { recursive: true, force: true });
});

/** One doorbell of one test: its own broker, daemon, sim wires and hub state. */
interface Doorbell {
  broker: RunningBroker;
  h: Harness;
  wires: WireClient;
  hubDir: string;
  /** The doorbell's pairing code, as `doorbell identity` prints it. */
  code: string;
  /** Runs `doorbell-hub` against this broker and this hub state. */
  hub: (...args: string[]) => ReturnType<typeof runCli>;
  /** A Commander signing with `key`, whose results are verified against the device key. */
  commanderFor(key: SigningKey, counterPath?: string): Promise<Commander>;
}

/** A doorbell nobody has paired (no configured hub keys; 1 s pairing hold). */
async function newDoorbell(): Promise<Doorbell & { stop(): Promise<void> }> {
  const broker = await startMosquitto();
  const hubDir = await mkdtemp(join(tmpdir(), 'doorbell-trust-hub-'));
  const h = await startHarness(broker.url, {
    trust: { hubKeys: [] },
    hal: { backend: 'sim', button: { holdMs: 1000 } },
  });
  const wires = await connectWires(h.device.simSocket ?? '');
  const identity = await runCli('firmware/cli.ts', [
    'identity',
    '--no-qr',
    '--device-id',
    'front-door',
    '--state-dir',
    join(h.dir, 'device'),
  ]);
  assert.equal(identity.code, 0, identity.stderr);
  const code = /pairing code:\s+(\S+)/.exec(identity.stdout)?.[1] ?? '';
  assert.match(code, /^odb1:front-door:[0-9a-f]{64}:/);
  return {
    broker,
    h,
    wires,
    hubDir,
    code,
    hub: (...args) =>
      runCli('hub/cli.ts', [...args, '--broker', broker.url, '--state-dir', hubDir, '--timeout-ms', '8000']),
    async commanderFor(key, counterPath) {
      const path = counterPath ?? join(await mkdtemp(join(hubDir, 'counter-')), 'counter');
      return new Commander({
        connection: h.hub.connection,
        watcher: h.hub.watcher,
        key,
        counters: await CounterStore.open(path),
        logger: silentLogger(),
        keyEpochOf: () => h.device.trust.epoch,
      });
    },
    async stop() {
      await wires.close();
      await h.stop();
      await broker.stop();
      await rm(hubDir, { recursive: true, force: true });
    },
  };
}

/** Holds the button past holdMs and waits for the window to open. */
async function openWindowByHold(d: Pick<Doorbell, 'h' | 'wires'>): Promise<void> {
  await d.wires.hold(1300);
  await d.h.waitForEvent((e) => e.event.pairingWindow?.open === true, 5000, 'window open');
}

/** A doorbell paired as the README has it: owner alice (Administer), the hub key Operate, one recipient. */
async function pairedDoorbell(): Promise<Doorbell & { stop(): Promise<void> }> {
  const d = await newDoorbell();
  try {
    await openWindowByHold(d);
    const r = await d.hub('pair', '--code', d.code, '--recipient', recipient, '--label', 'alice');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return d;
  } catch (err) {
    await d.stop();
    throw err;
  }
}

/** Runs `body` on a doorbell made by `make`, and stops it whatever happens. */
function withDoorbell(
  make: () => Promise<Doorbell & { stop(): Promise<void> }>,
  body: (d: Doorbell) => Promise<void>,
): () => Promise<void> {
  return async () => {
    const d = await make();
    try {
      await body(d);
    } finally {
      await d.stop();
    }
  };
}

describe('pairing, roles and key epochs against a real Mosquitto', () => {
  test(
    'a new doorbell refuses to pair while its window is closed, and says so verifiably',
    withDoorbell(newDoorbell, async ({ h, hub, code }) => {
      assert.equal(h.device.trust.isPaired, false);
      const r = await hub('pair', '--code', code, '--recipient', recipient);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /PAIRING_WINDOW_CLOSED/);
      assert.match(r.stderr, /next: on a new doorbell, hold its button for 5 s/, 'the next step');
      assert.equal(h.device.trust.isPaired, false);
    }),
  );

  test(
    'holding the button opens the window; a neighbour without the secret cannot pair',
    withDoorbell(newDoorbell, async ({ h, wires, hub, code }) => {
      await wires.hold(1300);
      await h.waitForEvent((e) => e.event.pairingWindow?.open === true, 5000, 'window open');
      assert.equal(h.device.hal.led.state, 'pairing', 'the LED shows the open window');
      const real = parsePairingCode(code);
      const guessed = formatPairingCode({ ...real, secret: randomBytes(32) });
      const r = await hub('pair', '--code', guessed, '--recipient', recipient);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /PAIRING_PROOF_INVALID/);
      assert.match(
        r.stderr,
        /next: check the code: it must be the one `npm run doorbell -- identity` prints/,
      );
      assert.equal(h.device.trust.isPaired, false);
    }),
  );

  test(
    'the owner pairs with the code: owner Administer, hub Operate, recipients, device key pinned',
    withDoorbell(newDoorbell, async ({ h, wires, hub, hubDir, code }) => {
      await openWindowByHold({ h, wires });
      const r = await hub('pair', '--code', code, '--recipient', recipient, '--label', 'alice');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^paired front-door: its key [0-9a-f]{16} matches the pairing code/);
      // The owner key was created by this pairing: a notice that cannot be missed, and no log lines.
      assert.match(r.stderr, /={78}\n {2}BACK UP THE OWNER KEY NOW\n\n {2}\S+owner-key\.pem\n/);
      assert.doesNotMatch(r.stderr, /"level"|INFO/, 'no log lines on success');
      assert.match(r.stdout, /administer\s+alice/);
      assert.match(r.stdout, /operate\s+hub/);
      assert.equal(h.device.trust.isPaired, true);
      assert.deepEqual(h.device.trust.recipients, [recipient]);
      await h.waitForEvent(
        (e) => e.event.pairingWindow?.open === false && e.event.pairingWindow.reason === 'paired',
      );
      await h.waitForEvent((e) => e.event.keysChanged?.change === 'paired', 5000, 'paired audit event');
      assert.match(r.stderr, /saved the broker settings to \S+hub\.json; later commands need no --broker/);
      // As the README has it: `ring front-door`, no --broker, after pairing.
      const ring = await runCli('hub/cli.ts', ['ring', 'front-door', '--state-dir', hubDir]);
      assert.equal(ring.code, 0, ring.stderr);
      assert.match(ring.stdout, /^\{"device":"front-door","ok":true/, 'the result is the first line');
      assert.equal(ring.stderr, '', 'a command that works prints nothing else');
    }),
  );

  test(
    'after a plain pair, `mute` works as documented: the owner key signs what the hub key (Operate) may not',
    withDoorbell(pairedDoorbell, async ({ h, wires, hub }) => {
      const asHub = await hub('mute', 'front-door', 'on', '--as', 'hub');
      assert.equal(asHub.code, 1, `the hub key alone is refused: ${asHub.stdout}${asHub.stderr}`);
      assert.match(asHub.stdout, /UNAUTHORISED/, asHub.stderr);
      assert.match(
        asHub.stderr,
        /setChimeMuted needs manage, more than the hub key's role: sign with the owner key \(--as owner\)/,
      );
      const muted = await hub('mute', 'front-door', 'on');
      assert.equal(muted.code, 0, muted.stdout + muted.stderr);
      const rings = (await wires.chimeHistory()).length;
      await wires.press(100);
      await h.waitForEvent((e) => e.event.chimeRang?.skippedReason === 'muted', 5000, 'muted press');
      assert.equal((await wires.chimeHistory()).length, rings);
      const unmuted = await hub('mute', 'front-door', 'off');
      assert.equal(unmuted.code, 0, unmuted.stdout + unmuted.stderr);
    }),
  );
  test(
    'keys, status and devices print tables for people and JSON with --json, keys always as ed25519:',
    withDoorbell(pairedDoorbell, async ({ hub }) => {
      const keys = await hub('keys', 'front-door');
      assert.equal(keys.code, 0, keys.stderr);
      const [header, ...rows] = keys.stdout.split('\n');
      assert.match(header ?? '', /^KEY ID +ROLE +LABEL +SOURCE +PUBLIC KEY$/);
      assert.ok(
        rows.some((r) => /^[0-9a-f]{16} +administer +alice +paired +ed25519:[A-Za-z0-9_-]{43}$/.test(r)),
        keys.stdout,
      );
      assert.ok(
        rows.some((r) => /^[0-9a-f]{16} +operate +hub +paired +ed25519:/.test(r)),
        keys.stdout,
      );
      assert.match(keys.stdout, new RegExp(`footage recipients \\(1\\):\\n  ${recipient}\\n`));
      const json = await hub('keys', 'front-door', '--json');
      const parsed = JSON.parse(json.stdout) as { keys: { keys: { publicKey: string }[] } };
      assert.ok(
        parsed.keys.keys.every((k) => /^ed25519:[A-Za-z0-9_-]{43}$/.test(k.publicKey)),
        json.stdout,
      );
      const status = await hub('status', 'front-door');
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /^FIELD +VALUE\n/);
      assert.match(status.stdout, /^firmware version +0\.1\.0$/m);
      assert.match(status.stdout, /^hal backend +sim$/m);
      const devices = await hub('devices');
      assert.match(
        devices.stdout,
        /^DEVICE +PUBLIC KEY +KEY EPOCH +HUB KEY ROLE\nfront-door +ed25519:[A-Za-z0-9_-]{43} +\d+ +operate\n$/,
      );
      const devicesJson = JSON.parse((await hub('devices', '--json')).stdout) as {
        devices: Record<string, { hubRole: string }>;
      };
      assert.equal(devicesJson.devices['front-door']?.hubRole, 'operate');
    }),
  );

  test(
    'roles: the hub (Operate) cannot add keys; a View key reads but cannot ring',
    withDoorbell(pairedDoorbell, async ({ hub, commanderFor }) => {
      const view = generateSigningKey();
      const asHub = await hub(
        'keys',
        'add',
        'front-door',
        publicKeyToText(view),
        '--role',
        'view',
        '--as',
        'hub',
      );
      assert.equal(asHub.code, 1);
      assert.match(asHub.stdout, /UNAUTHORISED/, asHub.stderr);
      const added = await hub(
        'keys',
        'add',
        'front-door',
        publicKeyToText(view),
        '--role',
        'view',
        '--label',
        'phone',
      );
      assert.equal(added.code, 0, added.stdout + added.stderr);
      const viewer = await commanderFor(view);
      const status = await viewer.send('front-door', { getStatus: {} }, 5000);
      assert.equal(status.result.ok, true);
      assert.equal(status.result.status?.paired, true);
      const ring = await viewer.send('front-door', { ringChimeTest: {} }, 5000);
      assert.equal(ring.result.ok, false);
      assert.equal(ring.result.errorKind, ErrorKind.UNAUTHORISED);
      assert.match(ring.result.errorMessage ?? '', /needs operate/);
    }),
  );

  test(
    'a Manage key mutes and unmutes (Manage is what setChimeMuted needs) but cannot manage keys',
    withDoorbell(pairedDoorbell, async ({ h, wires, hub, commanderFor }) => {
      const manage = generateSigningKey();
      const added = await hub(
        'keys',
        'add',
        'front-door',
        publicKeyToText(manage),
        '--role',
        'manage',
        '--label',
        'tablet',
      );
      assert.equal(added.code, 0, added.stdout + added.stderr);
      const manager = await commanderFor(manage);
      const muted = await manager.send('front-door', { setChimeMuted: { muted: true } }, 5000);
      assert.equal(muted.result.ok, true, muted.result.errorMessage ?? '');
      const rings = (await wires.chimeHistory()).length;
      await wires.press(100);
      await h.waitForEvent((e) => e.event.chimeRang?.skippedReason === 'muted', 5000, 'muted press');
      assert.equal((await wires.chimeHistory()).length, rings, 'muted by the Manage key');
      const unmuted = await manager.send('front-door', { setChimeMuted: { muted: false } }, 5000);
      assert.equal(unmuted.result.ok, true, unmuted.result.errorMessage ?? '');
      const addKey = await manager.send(
        'front-door',
        { addKey: { publicKey: generateSigningKey().publicRaw, role: Role.VIEW, label: 'x' } },
        5000,
      );
      assert.equal(addKey.result.errorKind, ErrorKind.UNAUTHORISED);
      assert.match(addKey.result.errorMessage ?? '', /needs administer/);
    }),
  );

  test(
    'an Administer command living longer than 10 s is refused',
    withDoorbell(pairedDoorbell, async ({ hubDir, commanderFor }) => {
      const owner = await loadSigningKey(ownerKeyPath(hubDir));
      const admin = await commanderFor(owner, join(hubDir, 'owner-command-counter'));
      const r = await admin.send('front-door', { listKeys: {} }, 5000, { ttlMs: 20_000 });
      assert.equal(r.result.ok, true, 'a View command may live 20 s');
      const slow = await admin.send(
        'front-door',
        { setRecipients: { footageRecipients: [recipient] } },
        5000,
        {
          ttlMs: 20_000,
        },
      );
      assert.equal(slow.result.errorKind, ErrorKind.EXPIRED);
      assert.match(slow.result.errorMessage ?? '', /10000 ms/);
    }),
  );

  test(
    'removing a key raises the epoch; a command signed for the old epoch is refused',
    withDoorbell(pairedDoorbell, async ({ h, wires, hub, hubDir }) => {
      const view = generateSigningKey();
      const added = await hub('keys', 'add', 'front-door', publicKeyToText(view), '--role', 'view');
      assert.equal(added.code, 0, added.stdout + added.stderr);
      const before = h.device.trust.epoch;
      const list = await hub('keys', 'front-door', '--json');
      const viewId = /"keyId":"([0-9a-f]{16})","publicKey":"[^"]+","role":"VIEW"/.exec(list.stdout)?.[1];
      assert.equal(viewId, view.keyId, list.stdout);
      const hubKey = await loadSigningKey(join(hubDir, 'hub-key.pem'));
      // Signed before the removal, delivered after it.
      const counters = await CounterStore.open(join(hubDir, 'command-counter'));
      const now = Date.now();
      const captured = sealCommand(
        {
          header: {
            deviceId: 'front-door',
            topic: topicsFor('front-door').cmd,
            counter: counters.next(),
            issuedAtMs: now,
            expiresAtMs: now + 20_000,
            correlationId: newCorrelationId(),
            keyEpoch: before,
          },
          ringChimeTest: {},
        },
        hubKey,
      );
      await counters.flush();
      const removed = await hub('keys', 'remove', 'front-door', viewId);
      assert.equal(removed.code, 0, removed.stdout + removed.stderr);
      assert.equal(h.device.trust.epoch, before + 1);
      assert.equal(
        (await loadDeviceEpochs(hubDir)).get('front-door'),
        before + 1,
        'the hub learnt the new epoch',
      );
      const rings = (await wires.chimeHistory()).length;
      await h.hub.connection.publish(topicsFor('front-door').cmd, captured, { qos: 1 });
      const refusal = await h.waitForEvent(
        (e) => e.event.commandResult?.errorKind === ErrorKind.STALE_EPOCH,
        5000,
        'stale epoch refusal',
      );
      assert.equal(Number(refusal.event.commandResult?.keyEpoch), before + 1);
      assert.equal((await wires.chimeHistory()).length, rings, 'the stale command did not ring');
      const again = await hub('ring', 'front-door');
      assert.equal(again.code, 0, 'the hub signs for the new epoch');
    }),
  );

  test(
    'the last Administer cannot be removed or demoted',
    withDoorbell(pairedDoorbell, async ({ h, hub, hubDir }) => {
      const owner = await loadSigningKey(ownerKeyPath(hubDir));
      const remove = await hub('keys', 'remove', 'front-door', owner.keyId);
      assert.equal(remove.code, 1);
      assert.match(remove.stdout, /INVALID_ARGUMENT.*last Administer/);
      const demote = await hub('keys', 'role', 'front-door', owner.keyId, 'manage');
      assert.equal(demote.code, 1);
      assert.match(demote.stdout, /last Administer/);
      assert.equal(h.device.trust.roleOf(owner.keyId), Role.ADMINISTER);
    }),
  );

  test(
    'rotating a key swaps it for a new one with the same role, and the old one is refused',
    withDoorbell(pairedDoorbell, async ({ broker, h, wires, hub, hubDir }) => {
      const hubKey = await loadSigningKey(join(hubDir, 'hub-key.pem'));
      const next = generateSigningKey();
      const r = await hub('keys', 'rotate', 'front-door', hubKey.keyId, publicKeyToText(next));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(h.device.trust.roleOf(next.keyId), Role.OPERATE);
      assert.equal(h.device.trust.roleOf(hubKey.keyId), undefined);
      const rings = (await wires.chimeHistory()).length;
      const old = await runCli('hub/cli.ts', [
        'ring',
        'front-door',
        '--broker',
        broker.url,
        '--state-dir',
        hubDir,
        '--timeout-ms',
        '1500',
      ]);
      // The refusal is signed but carries no correlation id: nothing from an
      // unauthenticated command is echoed. The hub sees it as an event.
      assert.equal(old.code, 1);
      assert.match(old.stderr, /no result from front-door/);
      await h.waitForEvent(
        (e) => e.event.commandResult?.errorKind === ErrorKind.UNKNOWN_KEY,
        5000,
        'UNKNOWN_KEY',
      );
      assert.equal((await wires.chimeHistory()).length, rings);
    }),
  );

  test(
    'on a paired doorbell a hold does not open the window; an Administer can',
    withDoorbell(pairedDoorbell, async ({ h, wires, hub }) => {
      const byButton = () =>
        h.hub.events.filter(
          (e) => e.event.pairingWindow?.open === true && e.event.pairingWindow.reason === 'button',
        ).length;
      const opened = byButton();
      await wires.hold(1300);
      await h.waitForEvent((e) => e.event.kind === 'pairingRequested' && e.counter > 0, 5000);
      const r = await hub('open-pairing', 'front-door', '--seconds', '60');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      await h.waitForEvent(
        (e) => e.event.pairingWindow?.reason === 'command' && e.event.pairingWindow.open === true,
      );
      // The device's events arrive in the order it queued them: a window the hold had opened
      // would have come before the one the command opened.
      assert.equal(byButton(), opened, 'the hold opened no window');
    }),
  );

  test(
    '20 failed attempts close the window, and then even the right code is refused',
    withDoorbell(pairedDoorbell, async ({ h, hub, code }) => {
      const opened = await hub('open-pairing', 'front-door', '--seconds', '60');
      assert.equal(opened.code, 0, opened.stdout + opened.stderr);
      await h.waitForEvent((e) => e.event.pairingWindow?.reason === 'command', 5000, 'the window open');
      const real = parsePairingCode(code);
      const wrong = formatPairingCode({ ...real, secret: randomBytes(32) });
      for (let i = 0; i < 20; i += 1) {
        const r = await hub('pair', '--code', wrong);
        if (i < 19) assert.match(r.stderr, /PAIRING_PROOF_INVALID/, `attempt ${i + 1}`);
      }
      await h.waitForEvent((e) => e.event.pairingWindow?.reason === 'too-many-failures', 5000);
      const right = await hub('pair', '--code', code);
      assert.equal(right.code, 1);
      assert.match(right.stderr, /PAIRING_WINDOW_CLOSED/);
    }),
  );
});

describe('enrolment on disk', () => {
  test('an enrolment file rolled back below the epoch is refused as a whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'doorbell-trust-rollback-'));
    try {
      const { TrustStore } = await import('./trust/trust-store.js');
      const owner = generateSigningKey();
      const other = generateSigningKey();
      const store = await TrustStore.open(dir, [], { logger: silentLogger() });
      await store.pair({ owner, ownerLabel: 'o', recipients: [] });
      await store.add(other.publicRaw, Role.OPERATE, 'x');
      const withOther = await readFile(join(dir, 'enrolment.json'), 'utf8');
      await store.remove(other.keyId);
      await writeFile(join(dir, 'enrolment.json'), withOther); // restore the old file
      const reopened = await TrustStore.open(dir, [], { logger: silentLogger() });
      assert.ok(reopened.problem?.includes('rolled back'), reopened.problem);
      assert.equal(reopened.keys.has(other.keyId), false, 'the revoked key does not come back');
      assert.equal(reopened.isPaired, false);
      await assert.rejects(reopened.pair({ owner, ownerLabel: 'o', recipients: [] }), /factory-reset/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
