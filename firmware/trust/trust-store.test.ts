import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../common/logger.js';
import { generateSigningKey, verifyKeyOf } from '../../proto/index.js';
import { PairingWindow } from './pairing-window.js';
import { Role } from './roles.js';
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

test('the pairing window closes at its deadline and after the failure limit', async () => {
  const changes: string[] = [];
  let now = 0;
  const window = new PairingWindow({
    nowMs: () => now,
    onChange: (s) => changes.push(`${s.open ? 'open' : 'closed'}:${s.reason}`),
    maxFailures: 3,
  });
  window.open('button', 40);
  assert.equal(window.isOpen, true);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(window.isOpen, false);
  now = 1000;
  window.open('command', 10_000);
  window.recordFailure();
  window.recordFailure();
  assert.equal(window.isOpen, true);
  window.recordFailure();
  assert.equal(window.isOpen, false);
  window.recordFailure(); // closed: ignored
  window.close('paired'); // already closed: no change
  assert.deepEqual(changes, ['open:button', 'closed:timeout', 'open:command', 'closed:too-many-failures']);
});
