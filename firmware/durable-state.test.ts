/**
 * What each sender can change in the doorbell's durable state: one test per
 * row of the table in docs/security.md ("Who can change what"). Each sender
 * sends every command kind, valid and bent (ahead of time, expired, wrong
 * epoch, huge counters), many times over; then the state files are compared
 * with what its row allows.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { seededSigningKey } from '../bench/fuzz/generators.js';
import { type Actor, World } from '../bench/fuzz/sequence-world.js';
import { silentLogger } from '../common/logger.js';
import { doorbell, MAX_COUNTER } from '../proto/index.js';

const { Role } = doorbell.v1;
const RECIPIENT = 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq';

interface DurableState {
  enrolment: string;
  keyEpoch: string;
  settings: string;
  marks: Record<string, number>;
  trustedMs: number;
}

const worlds: World[] = [];
after(() => Promise.all(worlds.map((w) => w.dispose())));

async function world(seed: number): Promise<World> {
  const w = await World.create(seed, silentLogger());
  worlds.push(w);
  return w;
}

async function read(w: World): Promise<DurableState> {
  const state = join(w.dir, 'state');
  const text = (name: string) => readFile(join(state, name), 'utf8').catch(() => '');
  const replay = JSON.parse((await text('replay.json')) || '{"marks":{},"trustedMs":0}') as {
    marks: Record<string, number>;
    trustedMs: number;
  };
  return {
    enrolment: await text('enrolment.json'),
    keyEpoch: await text('key-epoch'),
    settings: await text('settings.json'),
    marks: replay.marks,
    trustedMs: replay.trustedMs,
  };
}

/** Every command kind with valid arguments; the targets are the other lower actors. */
function everyCommand(w: World): Omit<doorbell.v1.ICommand, 'header'>[] {
  const other = seededSigningKey(99, 'other');
  return [
    { getStatus: {} },
    { listKeys: {} },
    { ringChimeTest: {} },
    { setChimeMuted: { muted: true } },
    { addKey: { publicKey: other.publicRaw, role: Role.ADMINISTER, label: 'x' } },
    { removeKey: { keyId: w.keys.view.keyId } },
    { rotateKey: { keyId: w.keys.operate.keyId, newPublicKey: seededSigningKey(98, 'r').publicRaw } },
    { setRole: { keyId: w.keys.manage.keyId, role: Role.VIEW } },
    { setRecipients: { footageRecipients: [RECIPIENT] } },
    { openPairingWindow: { seconds: 60 } },
    { otaGetState: {} },
  ];
}

/** `actor` sends everything, valid and bent, 20 times over; the clock runs 60 s meanwhile. */
async function exercise(w: World, actor: Actor): Promise<void> {
  for (let round = 0; round < 20; round++) {
    for (const body of everyCommand(w)) {
      const trusted = w.dev.path.replay.trustedNowMs(w.clocks.local);
      await w.command(actor, body);
      await w.command(actor, body, { issuedAtMs: trusted + 4_900, expiresAtMs: trusted + 13_000 });
      await w.command(actor, body, { issuedAtMs: w.trueMs - 60_000, expiresAtMs: w.trueMs - 51_000 });
      await w.command(actor, body, { keyEpoch: w.dev.path.trust.epoch + 1 });
      await w.command(actor, body, { counter: MAX_COUNTER + 1 + round });
    }
    w.trueMs += 3_000;
    w.clocks.local += 3_000;
    w.clocks.mono += 3_000;
  }
}

function markChanges(before: DurableState, after: DurableState): string[] {
  const keys = new Set([...Object.keys(before.marks), ...Object.keys(after.marks)]);
  return [...keys].filter((k) => before.marks[k] !== after.marks[k]);
}

describe('who can change what in durable state', () => {
  test('a sender that is not enrolled changes nothing: no mark, no clock, no key, no setting, no durable answer', async () => {
    const w = await world(1);
    const before = await read(w);
    const durableBefore = w.dev.out.filter((o) => o.durable).length;
    for (let i = 0; i < 300; i++) {
      const stranger = seededSigningKey(i, 'stranger');
      const header = w.header(stranger, { issuedAtMs: w.trueMs + 4_900, expiresAtMs: w.trueMs + 13_000 });
      const kind = everyCommand(w)[i % 11] ?? {};
      await w.send(World.signRaw(doorbell.v1.Command.encode({ ...kind, header }).finish(), stranger));
      // A Pair with a guessed proof, while the window is closed and while it is open.
      if (i === 150) await w.command('owner', { openPairingWindow: { seconds: 600 } });
      await w.send(
        World.signRaw(
          doorbell.v1.Command.encode({
            header: w.header(stranger),
            pair: {
              ownerPublicKey: stranger.publicRaw,
              nonce: new Uint8Array(16),
              proof: new Uint8Array(32),
            },
          }).finish(),
          stranger,
        ),
      );
    }
    const after = await read(w);
    assert.deepEqual(
      markChanges(before, after).filter((k) => k !== w.keys.owner.keyId),
      [],
      'no mark but the owner’s (who opened the window)',
    );
    assert.equal(after.enrolment, before.enrolment);
    assert.equal(after.settings, before.settings);
    assert.ok(after.trustedMs <= w.trueMs);
    const durableAnswers = w.dev.out.slice(durableBefore).filter((o) => o.durable && o.event.commandResult);
    assert.equal(durableAnswers.length, 1, 'only the owner’s answer was queued durably');
  });

  for (const [actor, article] of [
    ['view', 'a'],
    ['operate', 'an'],
  ] as const) {
    test(`${article} ${actor} key changes only its own replay mark: not the clock, keys, roles, recipients or settings`, async () => {
      const w = await world(2);
      const before = await read(w);
      await exercise(w, actor);
      const after = await read(w);
      assert.deepEqual(markChanges(before, after), [w.keys[actor].keyId]);
      const mark = after.marks[w.keys[actor].keyId] ?? 0;
      const reserve = 100;
      assert.ok(mark <= w.lastCounter(w.keys[actor]) + reserve, `mark ${mark}: the huge counters left none`);
      assert.equal(after.enrolment, before.enrolment);
      assert.equal(after.keyEpoch, before.keyEpoch);
      assert.equal(after.settings, before.settings);
      assert.ok(after.trustedMs <= w.trueMs, 'trusted time is not ahead of real time');
      assert.equal(w.dev.path.replay.trustedNowMs(w.clocks.local), w.clocks.local, 'nor in memory');
    });
  }

  test('a manage key changes its own mark and the settings, nothing else', async () => {
    const w = await world(3);
    const before = await read(w);
    await exercise(w, 'manage');
    const after = await read(w);
    assert.deepEqual(markChanges(before, after), [w.keys.manage.keyId]);
    assert.notEqual(after.settings, before.settings, 'muting is a Manage setting');
    assert.equal(after.enrolment, before.enrolment);
    assert.equal(after.keyEpoch, before.keyEpoch);
    assert.ok(after.trustedMs <= w.trueMs);
  });

  test('an administer key changes keys, roles, the epoch, recipients and settings; the clock only up to real time', async () => {
    const w = await world(4);
    const before = await read(w);
    await exercise(w, 'owner');
    const after = await read(w);
    assert.notEqual(after.enrolment, before.enrolment);
    assert.ok(
      Number(after.keyEpoch) > Number(before.keyEpoch || 0),
      'removing and demoting raised the epoch',
    );
    assert.notEqual(after.settings, before.settings);
    assert.ok(after.trustedMs <= w.trueMs, 'confirmed, never ahead of real time');
    assert.ok(after.trustedMs > before.trustedMs, 'an Administer confirms the trusted clock');
  });

  test('a pairer with the secret enrols itself only while an Administer holds the window open, and changes no role', async () => {
    const w = await world(5);
    const pairer = seededSigningKey(5, 'pairer');
    const before = await read(w);
    const closed = await w.pair(pairer, { hubPublicKey: w.keys.owner.publicRaw, hubRole: Role.VIEW });
    assert.equal(closed.ok, false, 'the window is closed on a paired doorbell');
    assert.equal((await read(w)).enrolment, before.enrolment);
    await w.command('owner', { openPairingWindow: { seconds: 60 } });
    const demoting = await w.pair(pairer, { hubPublicKey: w.keys.owner.publicRaw, hubRole: Role.VIEW });
    assert.equal(demoting.ok, false, 'naming the owner with another role is refused');
    assert.equal((await read(w)).enrolment, before.enrolment, 'all or nothing');
    const ok = await w.pair(pairer, {});
    assert.equal(ok.ok, true);
    assert.equal(w.dev.path.trust.roleOf(pairer.keyId), Role.ADMINISTER);
    assert.equal(w.dev.path.trust.roleOf(w.keys.owner.keyId), Role.ADMINISTER);
    assert.equal(w.dev.path.trust.epoch, 0, 'enrolling raises no epoch');
  });
});
