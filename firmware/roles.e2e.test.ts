import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadDeviceEpochs, ownerKeyPath } from '../hub/hub-state.js';
import {
  CounterStore,
  doorbell,
  generateSigningKey,
  loadSigningKey,
  newCorrelationId,
  publicKeyToText,
  sealCommand,
  topicsFor,
} from '../proto/index.js';
import { runCli } from '../test-support/run-cli.js';
import { fileAgeRecipient, withDoorbell } from '../test-support/trust-doorbell.js';

const { ErrorKind, Role } = doorbell.v1;

/** This file's age recipient, and doorbells paired with it as the README has it. */
const age = fileAgeRecipient();
const paired = age.paired;

describe('roles and key epochs against a real Mosquitto', () => {
  test(
    'roles: the hub (Operate) cannot add keys; a View key reads but cannot ring',
    withDoorbell(paired, async ({ hub, commanderFor }) => {
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
    withDoorbell(paired, async ({ h, wires, hub, commanderFor }) => {
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
    withDoorbell(paired, async ({ hubDir, commanderFor }) => {
      const owner = await loadSigningKey(ownerKeyPath(hubDir));
      const admin = await commanderFor(owner, join(hubDir, 'owner-command-counter'));
      const r = await admin.send('front-door', { listKeys: {} }, 5000, { ttlMs: 20_000 });
      assert.equal(r.result.ok, true, 'a View command may live 20 s');
      const slow = await admin.send(
        'front-door',
        { setRecipients: { footageRecipients: [age.recipient] } },
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
    withDoorbell(paired, async ({ h, wires, hub, hubDir }) => {
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
    withDoorbell(paired, async ({ h, hub, hubDir }) => {
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
    withDoorbell(paired, async ({ broker, h, wires, hub, hubDir }) => {
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
});
