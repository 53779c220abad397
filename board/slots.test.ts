import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { snapshot } from '../flash/test-helpers.js';
import { generateSigningKey } from '../proto/keys.js';
import { type BundleMeta, buildBundle, isBundleError, keyMap } from './manifest.js';
import {
  type BoardTrust,
  bootStatePath,
  commit,
  currentLink,
  installToInactiveSlot,
  readBootState,
  rollback,
  SlotError,
  selectSlotAtBoot,
  slotDir,
  switchToTrial,
  verifySlot,
} from './slots.js';

const key = generateSigningKey();
const trust: BoardTrust = { keys: keyMap([key]), hardware: 'open-doorbell/sim-x64', allowDevelopment: false };
const NOW = Date.now();
const meta = (version: string, securityCounter: number, extra: Partial<BundleMeta> = {}): BundleMeta => ({
  hardware: 'open-doorbell/sim-x64',
  version,
  securityCounter,
  createdAtMs: NOW - 1000,
  expiresAtMs: NOW + 86_400_000,
  development: false,
  entry: 'doorbell.js',
  ...extra,
});
const files = (tag: string) => [
  { path: 'doorbell.js', data: Buffer.from(`// firmware ${tag}\n`), executable: true },
  { path: 'lib/deep/data.bin', data: Buffer.alloc(3000, tag.charCodeAt(0)) },
];

describe('A/B slots', () => {
  const base = mkdtempSync(join(tmpdir(), 'flash-slots-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  let n = 0;
  const fresh = (): string => join(base, `root-${n++}`);
  const bundleFile = (name: string, m: BundleMeta, tag = name): string => {
    const path = join(base, `${name}.bundle`);
    writeFileSync(path, buildBundle(files(tag), m, key));
    return path;
  };
  const v1 = bundleFile('v1', meta('1.0.0', 1));
  const v2 = bundleFile('v2', meta('2.0.0', 2));
  const o = { trust };

  async function flashed(): Promise<string> {
    const root = fresh();
    const { slot } = await installToInactiveSlot(root, v1, o);
    await switchToTrial(root, slot, o);
    await commit(root, o);
    return root;
  }

  it('first install goes to a, commits, and boots it', async () => {
    const root = await flashed();
    assert.equal(readlinkSync(currentLink(root)), 'a');
    const state = await readBootState(root);
    assert.deepEqual(
      { c: state.committed, n: state.committedCounter, t: state.trial },
      { c: 'a', n: 1, t: null },
    );
    const sel = await selectSlotAtBoot(root, o);
    assert.equal(sel.slot, 'a');
    assert.equal(sel.mode, 'committed');
    assert.equal(readFileSync(join(slotDir(root, 'a'), 'doorbell.js'), 'utf8'), '// firmware v1\n');
    assert.equal(statSync(join(slotDir(root, 'a'), 'doorbell.js')).mode & 0o777, 0o755);
  });

  it('an update writes the inactive slot, boots it as a trial, and commits', async () => {
    const root = await flashed();
    const { slot } = await installToInactiveSlot(root, v2, o);
    assert.equal(slot, 'b');
    assert.equal((await selectSlotAtBoot(root, o)).slot, 'a', 'not switched yet');
    await switchToTrial(root, 'b', o);
    const sel = await selectSlotAtBoot(root, o);
    assert.deepEqual([sel.slot, sel.mode, sel.attempt], ['b', 'trial', 1]);
    assert.equal(readlinkSync(currentLink(root)), 'b');
    await commit(root, o);
    const state = await readBootState(root);
    assert.deepEqual([state.committed, state.committedCounter, state.trial], ['b', 2, null]);
    assert.equal((await selectSlotAtBoot(root, o)).mode, 'committed');
  });

  it('a trial that never commits rolls back after its attempts', async () => {
    const root = await flashed();
    await installToInactiveSlot(root, v2, o);
    await switchToTrial(root, 'b', o);
    for (let i = 1; i <= 3; i++) assert.equal((await selectSlotAtBoot(root, o)).slot, 'b');
    const sel = await selectSlotAtBoot(root, o);
    assert.deepEqual([sel.slot, sel.mode], ['a', 'rolled-back']);
    assert.match(sel.reason ?? '', /did not commit after 3 attempts/);
    assert.equal(readlinkSync(currentLink(root)), 'a');
    assert.equal((await readBootState(root)).trial, null);
  });

  it('a damaged trial rolls back at once; an explicit rollback works too', async () => {
    const root = await flashed();
    await installToInactiveSlot(root, v2, o);
    await switchToTrial(root, 'b', o);
    writeFileSync(join(slotDir(root, 'b'), 'lib/deep/data.bin'), 'x');
    const sel = await selectSlotAtBoot(root, o);
    assert.deepEqual([sel.slot, sel.mode], ['a', 'rolled-back']);
    const root2 = await flashed();
    await installToInactiveSlot(root2, v2, o);
    await switchToTrial(root2, 'b', o);
    assert.equal(await rollback(root2, o), 'a');
    assert.equal((await selectSlotAtBoot(root2, o)).slot, 'a');
  });

  it('a damaged committed slot falls back to the other only if its counter is not lower', async () => {
    const root = await flashed();
    await installToInactiveSlot(root, v2, o);
    await switchToTrial(root, 'b', o);
    await commit(root, o); // b (counter 2) committed, a holds v1 (counter 1)
    writeFileSync(join(slotDir(root, 'b'), 'doorbell.js'), 'tampered');
    await assert.rejects(selectSlotAtBoot(root, o), (e: SlotError) => e.kind === 'no-bootable-slot');
  });

  it('never installs or boots a lower security counter than the committed one', async () => {
    const root = await flashed();
    await installToInactiveSlot(root, v2, o);
    await switchToTrial(root, 'b', o);
    await commit(root, o);
    const before = snapshot(root);
    await assert.rejects(
      installToInactiveSlot(root, v1, o),
      (e) => isBundleError(e) && e.kind === 'downgrade',
    );
    assert.deepEqual(snapshot(root), before);
    // Even a slot holding an old bundle cannot be made the trial.
    await assert.rejects(switchToTrial(root, 'a', o), (e) => isBundleError(e) && e.kind === 'downgrade');
    const same = bundleFile('v2b', meta('2.0.1', 2));
    assert.equal((await installToInactiveSlot(root, same, o)).slot, 'a');
  });

  it('refuses bad bundles before writing anything', async () => {
    const root = await flashed();
    const before = snapshot(root);
    const other = generateSigningKey();
    const cases: Array<[string, string]> = [
      [
        bundleFile('expired', meta('3.0.0', 3, { createdAtMs: NOW - 10_000, expiresAtMs: NOW - 5000 })),
        'expired',
      ],
      [bundleFile('hw', meta('3.0.0', 3, { hardware: 'open-doorbell/rpi-arm64' })), 'wrong-hardware'],
      [bundleFile('dev', meta('3.0.0', 3, { development: true })), 'development-build'],
    ];
    const foreign = join(base, 'foreign.bundle');
    writeFileSync(foreign, buildBundle(files('f'), meta('3.0.0', 3), other));
    cases.push([foreign, 'unknown-key']);
    const tampered = join(base, 'tampered.bundle');
    const t = buildBundle(files('t'), meta('3.0.0', 3), key);
    t[t.length - 10] = (t[t.length - 10] ?? 0) ^ 0xff;
    writeFileSync(tampered, t);
    cases.push([tampered, 'hash-mismatch']);
    for (const [path, kind] of cases) {
      await assert.rejects(
        installToInactiveSlot(root, path, o),
        (e) => isBundleError(e) && e.kind === kind,
        kind,
      );
      assert.deepEqual(snapshot(root), before, kind);
    }
  });

  it('a corrupt boot state is reported, not guessed', async () => {
    const root = await flashed();
    writeFileSync(bootStatePath(root), '{"version":1');
    await assert.rejects(selectSlotAtBoot(root, o), (e: SlotError) => e.kind === 'corrupt-state');
  });

  it('verifySlot checks every file against the stored signed manifest', async () => {
    const root = await flashed();
    assert.equal((await verifySlot(root, 'a', trust, 0)).version, '1.0.0');
    rmSync(join(slotDir(root, 'a'), 'lib/deep/data.bin'));
    await assert.rejects(verifySlot(root, 'a', trust, 0), (e: SlotError) => e.kind === 'slot-invalid');
  });

  it('property: any boot state selects a verified slot at or above its counter, or fails with a typed error', async () => {
    const root = await flashed();
    await installToInactiveSlot(root, v2, o);
    const slotArb = fc.constantFrom('a', 'b', null, 'c');
    const stateArb = fc.oneof(
      fc.record({
        version: fc.constantFrom(1, 2),
        committed: slotArb,
        committedCounter: fc.integer({ min: -1, max: 4 }),
        committedCreatedAtMs: fc.nat(),
        trial: slotArb,
        trialAttempts: fc.integer({ min: 0, max: 5 }),
      }),
      fc.jsonValue(),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          stateArb.map((v) => JSON.stringify(v) ?? 'null'),
          fc.string(),
        ),
        async (text) => {
          writeFileSync(bootStatePath(root), text);
          try {
            const sel = await selectSlotAtBoot(root, o);
            const state = await readBootState(root);
            assert.ok(sel.manifest.securityCounter >= state.committedCounter);
            assert.equal(readlinkSync(currentLink(root)), sel.slot);
          } catch (err) {
            assert.ok(err instanceof SlotError || isBundleError(err), String(err));
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
