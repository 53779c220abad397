import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { sealCommand, sealEvent } from './envelope.js';
import { doorbell } from './gen/doorbell.js';
import { MAX_COUNTER } from './header.js';
import { generateSigningKey } from './keys.js';
import { MAX_REPLAY_KEYS, type ReplayDecision, ReplayGuard, ReplayGuardError } from './replay-guard.js';
import { commandCtx, HUB_KEY, header, NOW_MS, TOPICS } from './test-fixtures.js';
import { errorKindOf, openCommand, type ReplayError, VerifyError } from './verify.js';

const KEY = HUB_KEY.keyId;
const dirs: string[] = [];
async function tempPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'replay-guard-'));
  dirs.push(dir);
  return join(dir, 'state', 'replay.json');
}
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** check + accept, as openCommand does. */
function admit(guard: ReplayGuard, counter: number, issuedAtMs = NOW_MS, key = KEY): ReplayDecision {
  const decision = guard.check(key, counter, issuedAtMs);
  if (decision === 'ok') guard.accept(key, counter, issuedAtMs);
  return decision;
}

function command(counter: number, issuedAtMs = NOW_MS - 1000, expiresAtMs = issuedAtMs + 30_000): Uint8Array {
  return sealCommand(
    { header: header(TOPICS.cmd, { counter, issuedAtMs, expiresAtMs }), ringChimeTest: {} },
    HUB_KEY,
  );
}

function rejectsAs(fn: () => unknown, kind: string, decision?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof VerifyError, String(err));
    assert.equal(err.kind, kind, err.message);
    if (decision !== undefined) assert.equal((err as ReplayError).decision, decision);
    return true;
  });
}

describe('the counter window', () => {
  test('matches a simple model on random sequences of counters', async () => {
    const path = await tempPath();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 120 }), { maxLength: 200 }), async (counters) => {
        await rm(path, { force: true });
        const guard = await ReplayGuard.open(path, { reserve: 50 });
        const accepted = new Set<number>();
        let highest = 0;
        for (const c of counters) {
          const fresh = !accepted.has(c) && c > highest - 32;
          const expected: ReplayDecision = fresh
            ? 'ok'
            : accepted.has(c) && c > highest - 32
              ? 'replay'
              : 'too-old';
          assert.equal(admit(guard, c), expected, `counter ${c} after ${[...accepted]}`);
          if (fresh) {
            accepted.add(c);
            highest = Math.max(highest, c);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  test('a duplicate is a replay; 32 behind is too old, 31 behind is still accepted', async () => {
    const guard = await ReplayGuard.open(await tempPath());
    assert.equal(admit(guard, 100), 'ok');
    assert.equal(admit(guard, 100), 'replay');
    assert.equal(admit(guard, 68), 'too-old');
    assert.equal(admit(guard, 69), 'ok');
    assert.equal(admit(guard, 69), 'replay');
    assert.equal(admit(guard, 150), 'ok', 'a counter ahead moves the window');
    assert.equal(admit(guard, 100), 'too-old');
    assert.throws(() => guard.accept(KEY, 150, NOW_MS), ReplayGuardError);
  });

  test('keys have separate windows', async () => {
    const guard = await ReplayGuard.open(await tempPath());
    assert.equal(admit(guard, 5, NOW_MS, 'aaaaaaaaaaaaaaaa'), 'ok');
    assert.equal(admit(guard, 5, NOW_MS, 'bbbbbbbbbbbbbbbb'), 'ok');
    assert.equal(admit(guard, 5, NOW_MS, 'aaaaaaaaaaaaaaaa'), 'replay');
  });
});

describe('persistence', () => {
  test('after a clean restart every counter <= N is refused and N + 1 is accepted', async () => {
    const path = await tempPath();
    const guard = await ReplayGuard.open(path, { reserve: 1000 });
    for (let c = 1; c <= 40; c++) assert.equal(admit(guard, c), 'ok');
    guard.close();
    assert.throws(() => guard.accept(KEY, 41, NOW_MS), /closed/);
    const again = await ReplayGuard.open(path, { reserve: 1000 });
    for (let c = 1; c <= 40; c++) assert.notEqual(admit(again, c), 'ok', `counter ${c}`);
    assert.equal(admit(again, 41), 'ok');
  });

  test('kill -9 (open again without close) never re-accepts a counter', async () => {
    const path = await tempPath();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        async (counters, reserve) => {
          await rm(path, { force: true });
          const first = await ReplayGuard.open(path, { reserve });
          const accepted = counters.filter((c) => admit(first, c) === 'ok');
          const second = await ReplayGuard.open(path, { reserve }); // `first` never closed
          for (const c of accepted) assert.equal(second.check(KEY, c, NOW_MS), 'too-old');
          const top = Math.max(...accepted);
          assert.equal(second.check(KEY, top + reserve, NOW_MS), 'ok', 'at most reserve - 1 lost');
        },
      ),
      { numRuns: 100 },
    );
  });

  test('a captured command replayed after a device restart is refused with a signed REPLAY', async () => {
    const path = await tempPath();
    const captured = command(9);
    const guard = await ReplayGuard.open(path);
    openCommand(captured, commandCtx({ replay: guard }));
    const afterRestart = await ReplayGuard.open(path); // no close: a power cut
    rejectsAs(() => openCommand(captured, commandCtx({ replay: afterRestart })), 'replay', 'too-old');
    assert.equal(errorKindOf('replay'), doorbell.v1.ErrorKind.REPLAY);
  });

  test('a failed mark write refuses the command and records nothing', async () => {
    const path = await tempPath();
    const guard = await ReplayGuard.open(path, { reserve: 2 });
    assert.equal(admit(guard, 1), 'ok');
    await rm(join(path, '..'), { recursive: true });
    assert.throws(() => guard.accept(KEY, 3, NOW_MS), /persist-failed|ENOENT/);
    assert.equal(guard.check(KEY, 3, NOW_MS), 'ok');
  });
});

describe('trusted time', () => {
  test('a clock set back does not revive a command that expired before a confirmed signed time', async () => {
    const path = await tempPath();
    const t = NOW_MS;
    const stale = command(5, t - 120_000); // expired at t - 90 s
    let local = t;
    let mono = 0;
    const ctx = (guard: ReplayGuard) => commandCtx({ nowMs: local, replay: guard });
    const guard = await ReplayGuard.open(path, { monoMs: () => mono });
    openCommand(command(10, t), ctx(guard));
    guard.confirmTime(t, local); // an Administer's command: the firmware confirms its issue time
    local = t - 100_000; // the clock is set back: locally `stale` looks valid
    mono = 1_000;
    openCommand(stale, commandCtx({ nowMs: local })); // without the guard it would pass
    rejectsAs(() => openCommand(stale, ctx(guard)), 'expired');
    assert.equal(guard.trustedNowMs(local), t + 1_000, 'the floor ran on with the monotonic clock');
    const afterRestart = await ReplayGuard.open(path); // the confirmed time is persisted
    rejectsAs(() => openCommand(stale, ctx(afterRestart)), 'expired');
  });

  test('signed times never move trusted time ahead: 1,000 commands each 4.9 s ahead of the last', async () => {
    const guard = await ReplayGuard.open(await tempPath(), { monoMs: () => 0 });
    const t = NOW_MS;
    let accepted = 0;
    for (let i = 1; i <= 1_000; i++) {
      const issuedAtMs = t + i * 4_900;
      try {
        openCommand(command(i, issuedAtMs, issuedAtMs + 9_000), commandCtx({ nowMs: t, replay: guard }));
        accepted += 1;
      } catch (err) {
        assert.ok(err instanceof VerifyError && err.kind === 'not-yet-valid', String(err));
      }
      guard.confirmTime(issuedAtMs, t); // even confirmed, as if every one came from an Administer
    }
    assert.equal(accepted, 1, 'only the first is within the 5 s skew');
    assert.equal(guard.trustedNowMs(t), t, 'trusted time did not move');
    openCommand(command(2_000, t, t + 9_000), commandCtx({ nowMs: t, replay: guard }));
  });

  test('the floor advances with the monotonic clock, never faster, and a confirmation never sets it ahead', async () => {
    let mono = 0;
    const guard = await ReplayGuard.open(await tempPath(), { monoMs: () => mono });
    guard.confirmTime(NOW_MS, NOW_MS);
    mono = 10_000;
    assert.equal(guard.trustedNowMs(0), NOW_MS + 10_000, 'a clock reset to 0 still reads floor + elapsed');
    guard.confirmTime(NOW_MS + 60_000, 0);
    assert.equal(guard.trustedNowMs(0), NOW_MS + 10_000, 'a confirmation above trusted time is capped');
    assert.equal(guard.trustedNowMs(NOW_MS + 50_000), NOW_MS + 50_000, 'the local clock wins when later');
  });

  test('the maximum lifetime refuses long-lived commands as expired', () => {
    const long = command(3, NOW_MS - 1000, NOW_MS - 1000 + 30_001);
    rejectsAs(() => openCommand(long, commandCtx({ maxLifetimeMs: 30_000 })), 'expired');
    openCommand(command(4, NOW_MS - 1000, NOW_MS - 1000 + 30_000), commandCtx({ maxLifetimeMs: 30_000 }));
    rejectsAs(
      () => openCommand(command(4, NOW_MS - 1000, NOW_MS + 9_001), commandCtx({ maxLifetimeMs: 10_000 })),
      'expired',
    );
  });

  test('a refused command does not move the window or the trusted time', async () => {
    // A monotonic clock that stands still: only the refused command could move trusted time.
    const guard = await ReplayGuard.open(await tempPath(), { monoMs: () => 0 });
    rejectsAs(
      () => openCommand(command(50), commandCtx({ replay: guard, deviceId: 'back-door' })),
      'wrong-device',
    );
    assert.equal(guard.check(KEY, 50, NOW_MS), 'ok');
    assert.equal(guard.trustedNowMs(1), 1);
  });
});

describe('bounds', () => {
  test('counters above MAX_COUNTER are refused; a mark above it in the file is read as MAX_COUNTER', async () => {
    const path = await tempPath();
    const guard = await ReplayGuard.open(path);
    assert.equal(guard.check(KEY, MAX_COUNTER + 1, NOW_MS), 'too-old');
    assert.equal(guard.check(KEY, Number.MAX_SAFE_INTEGER, NOW_MS), 'too-old');
    assert.equal(admit(guard, MAX_COUNTER - 5), 'ok');
    assert.equal(JSON.parse(await readFile(path, 'utf8')).marks[KEY], MAX_COUNTER, 'the reserve is capped');
    await writeFile(
      path,
      JSON.stringify({ v: 1, trustedMs: 0, notBeforeMs: 0, marks: { [KEY]: Number.MAX_SAFE_INTEGER } }),
    );
    const reopened = await ReplayGuard.open(path);
    assert.equal(reopened.corruption, undefined);
    assert.equal(reopened.check(KEY, 5, NOW_MS), 'too-old');
    const next = reopened.nextCounter(KEY);
    assert.equal(next, MAX_COUNTER + 1, 'the key is spent; the next counter is still a safe integer');
    // The refusal naming it seals: this is what crashed the daemon when it was 2^53.
    sealEvent(
      { header: header(TOPICS.evt), commandResult: { ok: false, nextCounter: next } },
      generateSigningKey(),
    );
  });

  test('when full, the marks of keys no longer enrolled make room; with every key enrolled the next is refused', async () => {
    const path = await tempPath();
    const ids = Array.from({ length: MAX_REPLAY_KEYS }, (_, i) => i.toString(16).padStart(16, '0'));
    const live = new Set(ids);
    const guard = await ReplayGuard.open(path, { isLive: (id) => live.has(id) });
    for (const id of ids) assert.equal(admit(guard, 1, NOW_MS, id), 'ok');
    const newcomer = 'f'.repeat(16);
    assert.throws(
      () => guard.accept(newcomer, 1, NOW_MS),
      (e) => e instanceof ReplayGuardError && e.problem === 'full',
    );
    live.delete(ids[3] as string);
    live.delete(ids[7] as string);
    guard.accept(newcomer, 1, NOW_MS);
    const marks = JSON.parse(await readFile(path, 'utf8')).marks as Record<string, number>;
    assert.equal(Object.keys(marks).length, MAX_REPLAY_KEYS - 1);
    assert.equal(marks[ids[3] as string], undefined);
    assert.ok(marks[newcomer]);
  });
});

describe('a corrupt file', () => {
  for (const [name, text] of [
    ['not JSON', '{"v":1,'],
    ['a wrong shape', '{"v":1,"trustedMs":0,"notBeforeMs":0,"marks":{"xyz":5}}'],
    ['a negative mark', `{"v":1,"trustedMs":0,"notBeforeMs":0,"marks":{"${KEY}":-1}}`],
    ['oversized', `{"v":1,"pad":"${'x'.repeat(70_000)}"}`],
  ] as const) {
    test(`(${name}) lets no command issued before the restart in, and the hub's fresh commands re-establish the mark`, async () => {
      const path = await tempPath();
      const guard = await ReplayGuard.open(path);
      assert.equal(admit(guard, 7, NOW_MS - 10_000), 'ok');
      await writeFile(path, text);
      const opened = await ReplayGuard.open(path, { nowMs: () => NOW_MS });
      assert.ok(opened.corruption, 'the problem is reported');
      assert.equal(await readFile(`${path}.corrupt`, 'utf8'), text);
      // Anything issued up to the local time plus the skew at open may have been accepted before.
      assert.equal(opened.check(KEY, 7, NOW_MS - 10_000), 'too-old');
      assert.equal(opened.check(KEY, 8, NOW_MS + 4_999), 'too-old');
      assert.equal(admit(opened, 8, NOW_MS + 5_000), 'ok');
      assert.equal(admit(opened, 6, NOW_MS - 10_000), 'too-old', 'in the window but issued before');
      // The fresh file is valid and holds the new mark.
      const later = await ReplayGuard.open(path, { nowMs: () => NOW_MS + 60_000 });
      assert.equal(later.corruption, undefined);
      assert.equal(later.check(KEY, 8, NOW_MS + 5_000), 'too-old');
      assert.equal(later.check(KEY, 7, NOW_MS - 10_000), 'too-old');
    });
  }

  test('the fallback survives a restart before any command re-established a mark', async () => {
    const path = await tempPath();
    const guard = await ReplayGuard.open(path);
    assert.equal(admit(guard, 7, NOW_MS - 10_000), 'ok');
    await writeFile(path, 'garbage');
    assert.ok((await ReplayGuard.open(path, { nowMs: () => NOW_MS })).corruption);
    const rebooted = await ReplayGuard.open(path, { nowMs: () => NOW_MS + 60_000 }); // power cut, no command
    assert.equal(rebooted.corruption, undefined);
    assert.equal(rebooted.check(KEY, 7, NOW_MS - 10_000), 'too-old');
    assert.equal(rebooted.check(KEY, 8, NOW_MS + 5_000), 'ok');
  });

  test('a missing file is a first boot: counters from 1 are accepted', async () => {
    const guard = await ReplayGuard.open(await tempPath());
    assert.equal(guard.corruption, undefined);
    assert.equal(admit(guard, 1, 1), 'ok');
  });
});
