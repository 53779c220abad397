import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { FakeClock, nsToMs } from '../../common/clock.js';
import { silentLogger } from '../../common/logger.js';
import { generateSigningKey, verifyKeyOf } from '../../proto/index.js';
import { Role } from '../../proto/roles.js';
import { DeviceSettings } from '../services/settings.js';
import { loadOrCreatePairingSecret, pairingSecretPath } from './pairing-secret.js';
import { PairingWindow } from './pairing-window.js';
import { TrustChangeError, TrustStore } from './trust-store.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'trust-store-'));
  dirs.push(dir);
  return dir;
}
const open = (dir: string, configured: { key: ReturnType<typeof verifyKeyOf>; role: Role }[] = []) =>
  TrustStore.open(dir, configured, { logger: silentLogger() });
const RECIPIENT = 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq';

test('pairing persists the owner, the hub and the recipients, in a 0600 file', async () => {
  const dir = await freshDir();
  const owner = generateSigningKey();
  const hub = generateSigningKey();
  const store = await open(dir);
  await store.pair({
    owner,
    ownerLabel: 'alice',
    hub: { key: hub, role: Role.OPERATE, label: 'hub' },
    recipients: [RECIPIENT, RECIPIENT],
  });
  const again = await open(dir);
  assert.equal(again.roleOf(owner.keyId), Role.ADMINISTER);
  assert.equal(again.roleOf(hub.keyId), Role.OPERATE);
  assert.deepEqual(again.recipients, [RECIPIENT], 'duplicates are dropped');
  assert.equal(again.isPaired, true);
  assert.equal((await stat(join(dir, 'enrolment.json'))).mode & 0o777, 0o600);
});

test('bad arguments are TrustChangeErrors and change nothing on disk', async () => {
  const dir = await freshDir();
  const owner = generateSigningKey();
  const store = await open(dir);
  await store.pair({ owner, ownerLabel: 'o', recipients: [] });
  const before = await readFile(join(dir, 'enrolment.json'), 'utf8');
  await assert.rejects(store.add(new Uint8Array(31), Role.VIEW, 'x'), TrustChangeError);
  await assert.rejects(store.add(generateSigningKey().publicRaw, 0 as Role, 'x'), TrustChangeError);
  await assert.rejects(store.add(generateSigningKey().publicRaw, 9 as Role, 'x'), TrustChangeError);
  await assert.rejects(store.add(owner.publicRaw, Role.VIEW, 'x'), /already enrolled/);
  await assert.rejects(store.add(generateSigningKey().publicRaw, Role.VIEW, 'bad\nlabel'), TrustChangeError);
  await assert.rejects(store.remove('0000000000000000'), /not enrolled/);
  await assert.rejects(store.setRecipients([]), /at least one/);
  await assert.rejects(store.setRecipients(['age1notarecipient']), /age X25519/);
  assert.equal(await readFile(join(dir, 'enrolment.json'), 'utf8'), before);
});

test('config keys are listed and counted but cannot be changed by command', async () => {
  const dir = await freshDir();
  const configured = generateSigningKey();
  const store = await open(dir, [{ key: verifyKeyOf(configured), role: Role.ADMINISTER }]);
  assert.equal(store.isPaired, true);
  await assert.rejects(store.remove(configured.keyId), /config file/);
  await assert.rejects(store.rotate(configured.keyId, generateSigningKey().publicRaw), /config file/);
});

test('concurrent changes are applied one at a time; the epoch only grows', async () => {
  const dir = await freshDir();
  const owner = generateSigningKey();
  const store = await open(dir);
  await store.pair({ owner, ownerLabel: 'o', recipients: [] });
  const keys = Array.from({ length: 8 }, () => generateSigningKey());
  await Promise.all(keys.map((k) => store.add(k.publicRaw, Role.VIEW, 'k')));
  const epochs: number[] = [];
  await Promise.all(keys.map((k) => store.remove(k.keyId).then(() => epochs.push(store.epoch))));
  assert.equal(store.epoch, 8);
  assert.deepEqual(
    [...epochs].sort((a, b) => a - b),
    epochs,
    'each removal saw a higher epoch',
  );
  assert.equal((await open(dir)).epoch, 8);
  assert.equal((await readFile(join(dir, 'key-epoch'), 'utf8')).trim(), '8');
});

test('any bytes in enrolment.json either load or make the store refuse paired keys; never a crash', async () => {
  const dir = await freshDir();
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.string(), fc.json(), fc.uint8Array({ maxLength: 200 })), async (content) => {
      await writeFile(join(dir, 'enrolment.json'), content);
      const store = await open(dir);
      if (store.problem !== undefined) {
        assert.equal(store.keys.size, 0);
        assert.equal(store.isPaired, false);
      }
    }),
    { numRuns: 200 },
  );
});

test('the pairing window closes at its deadline on its clock and after the failure limit', () => {
  const changes: string[] = [];
  const clock = new FakeClock();
  const window = new PairingWindow({
    nowMs: () => nsToMs(clock.nowNs()),
    clock,
    onChange: (s) => changes.push(`${s.open ? 'open' : 'closed'}:${s.reason}`),
    maxFailures: 3,
  });
  window.open('button', 40);
  clock.advance(39);
  assert.equal(window.isOpen, true, 'open until its deadline');
  clock.advance(1);
  assert.equal(window.isOpen, false, 'closed at its deadline');
  window.open('command', 10_000);
  assert.equal(window.current.closesAtMs, nsToMs(clock.nowNs()) + 10_000);
  window.recordFailure();
  window.recordFailure();
  assert.equal(window.isOpen, true);
  window.recordFailure();
  assert.equal(window.isOpen, false);
  window.recordFailure(); // closed: ignored
  window.close('paired'); // already closed: no change
  assert.deepEqual(changes, ['open:button', 'closed:timeout', 'open:command', 'closed:too-many-failures']);
  assert.equal(clock.pendingTimers(), 0, 'a closed window leaves no timer');
});

test('a claimed window is closed to a second pairer; a failed claim hands it back with one more failure', () => {
  const changes: string[] = [];
  const clock = new FakeClock();
  const window = new PairingWindow({
    nowMs: () => 0,
    clock,
    onChange: (s) => changes.push(`${s.open ? 'open' : 'closed'}:${s.reason}:${s.failures}`),
  });
  assert.equal(window.claim(), false, 'a closed window cannot be claimed');
  window.open('button', 60_000);
  assert.equal(window.claim(), true);
  assert.equal(window.isOpen, false, 'closed to everyone else while claimed');
  assert.equal(window.claim(), false, 'a second pairer cannot claim it');
  window.release('failed');
  assert.equal(window.isOpen, true);
  assert.equal(window.current.failures, 1);
  assert.equal(window.claim(), true);
  window.release('paired');
  assert.equal(window.isOpen, false);
  assert.deepEqual(changes, ['open:button:0', 'closed:paired:1']);
});

test('pairing never changes an enrolled key role: a different role refuses it all, the same role is left alone', async () => {
  const dir = await freshDir();
  const owner = generateSigningKey();
  const hub = generateSigningKey();
  const configured = generateSigningKey();
  const store = await open(dir, [{ key: verifyKeyOf(configured), role: Role.MANAGE }]);
  const first = await store.pair({
    owner,
    ownerLabel: 'alice',
    hub: { key: hub, role: Role.OPERATE, label: 'hub' },
    recipients: [],
  });
  assert.deepEqual(first, [
    { keyId: owner.keyId, role: Role.ADMINISTER },
    { keyId: hub.keyId, role: Role.OPERATE },
  ]);
  const before = await readFile(join(dir, 'enrolment.json'), 'utf8');
  const second = generateSigningKey();
  // A second pairer naming the owner as its hub key with role View: the owner would be demoted.
  await assert.rejects(
    store.pair({
      owner: second,
      ownerLabel: 'mallory',
      hub: { key: owner, role: Role.VIEW, label: 'x' },
      recipients: [],
    }),
    /already enrolled as administer; pairing never changes a role/,
  );
  // A View key cannot become Administer by pairing with the secret.
  const view = generateSigningKey();
  await store.add(view.publicRaw, Role.VIEW, 'phone');
  const withView = await readFile(join(dir, 'enrolment.json'), 'utf8');
  await assert.rejects(
    store.pair({ owner: view, ownerLabel: 'v', recipients: [] }),
    /already enrolled as view/,
  );
  await assert.rejects(
    store.pair({
      owner: second,
      ownerLabel: 'm',
      hub: { key: configured, role: Role.OPERATE, label: 'x' },
      recipients: [],
    }),
    /already enrolled as manage/,
  );
  assert.equal(await readFile(join(dir, 'enrolment.json'), 'utf8'), withView, 'nothing written');
  assert.notEqual(before, withView);
  assert.equal(store.roleOf(owner.keyId), Role.ADMINISTER);
  assert.equal(store.roleOf(second.keyId), undefined, 'all or nothing: the refused pairer is not enrolled');
  // The same hub key with the same role: enrols the new owner, leaves the hub as it is.
  const third = generateSigningKey();
  const added = await store.pair({
    owner: third,
    ownerLabel: 'bob',
    hub: { key: hub, role: Role.OPERATE, label: 'renamed' },
    recipients: [],
  });
  assert.deepEqual(added, [{ keyId: third.keyId, role: Role.ADMINISTER }]);
  assert.equal(store.list().find((k) => k.key.keyId === hub.keyId)?.label, 'hub');
});

test('a damaged key-epoch file refuses the stored enrolment instead of trusting it', async () => {
  for (const content of ['', 'x\n', '-1\n', '99999999999999999999\n', 'A'.repeat(100)]) {
    const dir = await freshDir();
    const store = await open(dir);
    await store.pair({ owner: generateSigningKey(), ownerLabel: 'o', recipients: [] });
    await writeFile(join(dir, 'key-epoch'), content);
    const reopened = await open(dir);
    assert.ok(reopened.problem !== undefined, `accepted ${JSON.stringify(content.slice(0, 20))}`);
    assert.equal(reopened.isPaired, false);
  }
});

test('the pairing secret: created 0600 once, and a damaged or exposed file is refused', async () => {
  const dir = await freshDir();
  const secret = await loadOrCreatePairingSecret(dir);
  assert.equal(secret.length, 32);
  assert.equal((await stat(pairingSecretPath(dir))).mode & 0o777, 0o600);
  assert.deepEqual(await loadOrCreatePairingSecret(dir), secret);
  for (const content of ['', 'short\n', `${'A'.repeat(43)}=\n`, 'B'.repeat(500)]) {
    await writeFile(pairingSecretPath(dir), content, { mode: 0o600 });
    await assert.rejects(
      loadOrCreatePairingSecret(dir),
      /pairing-secret/,
      JSON.stringify(content.slice(0, 10)),
    );
  }
  await writeFile(pairingSecretPath(dir), `${secret.toString('base64url')}\n`);
  await chmod(pairingSecretPath(dir), 0o644);
  await assert.rejects(loadOrCreatePairingSecret(dir), /chmod 600/);
});

test('a damaged settings file gives the defaults: a setting never stops the doorbell', async () => {
  const dir = await freshDir();
  const settings = await DeviceSettings.open(dir, silentLogger());
  await settings.setChimeMuted(true);
  assert.equal((await DeviceSettings.open(dir, silentLogger())).chimeMuted, true);
  for (const content of ['{', '[]', '{"chimeMuted":"yes"}', '{"other":1}', 'x'.repeat(10_000)]) {
    await writeFile(join(dir, 'settings.json'), content);
    assert.equal((await DeviceSettings.open(dir, silentLogger())).chimeMuted, false, content.slice(0, 20));
  }
});
