import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { silentLogger } from '../common/logger.js';
import { doorbell, formatPairingCode, generateSigningKey, parsePairingCode } from '../proto/index.js';
import { runCli } from '../test-support/run-cli.js';
import {
  fileAgeRecipient,
  newDoorbell,
  openWindowByHold,
  withDoorbell,
} from '../test-support/trust-doorbell.js';

const { Role } = doorbell.v1;

/** This file's age recipient, and doorbells paired with it as the README has it. */
const age = fileAgeRecipient();
const paired = age.paired;

describe('pairing and the pairing window against a real Mosquitto', () => {
  test(
    'a new doorbell refuses to pair while its window is closed, and says so verifiably',
    withDoorbell(newDoorbell, async ({ h, hub, code }) => {
      assert.equal(h.device.trust.isPaired, false);
      const r = await hub('pair', '--code', code, '--recipient', age.recipient);
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
      const r = await hub('pair', '--code', guessed, '--recipient', age.recipient);
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
      const r = await hub('pair', '--code', code, '--recipient', age.recipient, '--label', 'alice');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^paired front-door: its key [0-9a-f]{16} matches the pairing code/);
      // The owner key was created by this pairing: a notice that cannot be missed, and no log lines.
      assert.match(r.stderr, /={78}\n {2}BACK UP THE OWNER KEY NOW\n\n {2}\S+owner-key\.pem\n/);
      assert.doesNotMatch(r.stderr, /"level"|INFO/, 'no log lines on success');
      assert.match(r.stdout, /administer\s+alice/);
      assert.match(r.stdout, /operate\s+hub/);
      assert.equal(h.device.trust.isPaired, true);
      assert.deepEqual(h.device.trust.recipients, [age.recipient]);
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
    withDoorbell(paired, async ({ h, wires, hub }) => {
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
    withDoorbell(paired, async ({ hub }) => {
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
      assert.match(keys.stdout, new RegExp(`footage recipients \\(1\\):\\n  ${age.recipient}\\n`));
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
    'on a paired doorbell a hold does not open the window; an Administer can',
    withDoorbell(paired, async ({ h, wires, hub }) => {
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
    withDoorbell(paired, async ({ h, hub, code }) => {
      // The longest window there is: twenty CLI starts must not outlast it (each takes seconds on a
      // loaded machine); what closes it here is the twentieth failure, never the clock.
      const opened = await hub('open-pairing', 'front-door', '--seconds', '600');
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
