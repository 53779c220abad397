import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { sealCommand } from './envelope.js';
import { doorbell } from './gen/doorbell.js';
import { type ReplayDecision, ReplayGuard, ReplayGuardError } from './replay-guard.js';
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
  test('a clock set back does not revive a command that expired before the latest signed time', async () => {
    const path = await tempPath();
    const t = NOW_MS;
    const stale = command(5, t - 120_000); // expired at t - 90 s
    let local = t;
    const ctx = (guard: ReplayGuard) => commandCtx({ nowMs: local, replay: guard });
    const guard = await ReplayGuard.open(path);
    openCommand(command(10, t), ctx(guard));
    local = t - 100_000; // the clock is set back: locally `stale` looks valid
    openCommand(stale, commandCtx({ nowMs: local })); // without the guard it would pass
    rejectsAs(() => openCommand(stale, ctx(guard)), 'expired');
    assert.equal(guard.trustedNowMs(local), t);
    const afterRestart = await ReplayGuard.open(path); // the signed time is persisted
    rejectsAs(() => openCommand(stale, ctx(afterRestart)), 'expired');
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
    const guard = await ReplayGuard.open(await tempPath());
    rejectsAs(
      () => openCommand(command(50), commandCtx({ replay: guard, deviceId: 'back-door' })),
      'wrong-device',
    );
    assert.equal(guard.check(KEY, 50, NOW_MS), 'ok');
    assert.equal(guard.trustedNowMs(1), 1);
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
