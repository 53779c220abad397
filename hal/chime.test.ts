import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock, nsToMs } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { ChimeDriver, type ChimeOptions } from './chime.js';
import { defaultChimeOptions } from './chime-plan.js';
import { HalError } from './errors.js';
import { SimOutputLine } from './sim/sim-lines.js';

function rig(overrides: Partial<ChimeOptions> = {}) {
  const clock = new FakeClock(0n);
  const line = new SimOutputLine('chime', () => clock.nowNs());
  const changes: Array<{ on: boolean; ms: number }> = [];
  line.observe((on, atNs) => changes.push({ on, ms: nsToMs(atNs) }));
  const warnings: unknown[] = [];
  const logger = silentLogger();
  logger.warn = ((obj: unknown) => {
    warnings.push(obj);
  }) as typeof logger.warn;
  const chime = new ChimeDriver(line, { ...defaultChimeOptions, ...overrides }, { clock, logger });
  return { clock, line, chime, changes, warnings };
}

/** On-periods and the gaps between them, in ms, from a list of changes. */
function periods(changes: Array<{ on: boolean; ms: number }>) {
  const on: number[] = [];
  const gaps: number[] = [];
  for (let i = 0; i + 1 < changes.length; i++) {
    const a = changes[i];
    const b = changes[i + 1];
    if (a === undefined || b === undefined) continue;
    (a.on ? on : gaps).push(b.ms - a.ms);
  }
  return { on, gaps };
}

test('mechanical: ring drives the line on before returning, off after pulseMs; busy meanwhile', async () => {
  const { clock, line, chime, changes } = rig();
  assert.deepEqual(chime.ring(), { started: true });
  assert.equal(line.read(), true);
  assert.equal(chime.ringing, true);
  clock.advance(100);
  assert.deepEqual(chime.ring(), { started: false, reason: 'busy' });
  clock.advance(150);
  assert.equal(line.read(), false);
  assert.deepEqual(chime.ring(), { started: false, reason: 'busy' }, 'refused inside the gap');
  clock.advance(250);
  assert.equal(chime.ringing, false);
  assert.deepEqual(chime.ring(), { started: true });
  clock.advance(1000);
  assert.deepEqual(periods(changes).on, [250, 250]);
  await chime.close();
  assert.equal(clock.pendingTimers(), 0);
});

test('electronic: plays the pattern, with off-periods raised to minGapMs', async () => {
  const { clock, chime, changes } = rig({
    mode: 'electronic',
    minGapMs: 100,
    pattern: [
      { onMs: 100, offMs: 50 },
      { onMs: 200, offMs: 300 },
    ],
  });
  chime.ring();
  clock.advance(2000);
  assert.deepEqual(periods(changes), { on: [100, 200], gaps: [100] });
  await chime.close();
});

test('a misbehaving configuration never holds the line on longer than maxOnMs, under rapid ring() calls', async () => {
  for (const overrides of [
    { mode: 'mechanical', pulseMs: 5000 },
    {
      mode: 'electronic',
      pattern: [
        { onMs: 3000, offMs: 0 },
        { onMs: 600_000, offMs: 1 },
      ],
    },
    { mode: 'mechanical', pulseMs: 5000, maxOnMs: 600_000 },
  ] as Array<Partial<ChimeOptions>>) {
    const { clock, chime, changes, warnings } = rig(overrides);
    for (let t = 0; t < 20_000; t += 1) {
      chime.ring();
      clock.advance(1);
    }
    await chime.close();
    const { on, gaps } = periods(changes);
    assert.ok(on.length > 5, `rang ${on.length} times`);
    assert.ok(Math.max(...on) <= 1000, `longest on-period ${Math.max(...on)} ms`);
    assert.ok(Math.min(...gaps) >= 250, `shortest gap ${Math.min(...gaps)} ms`);
    assert.ok(warnings.length > 0, 'the clamp is logged');
  }
});

test('maxOnMs below the pulse clamps the pulse', async () => {
  const { clock, chime, changes } = rig({ pulseMs: 900, maxOnMs: 300 });
  chime.ring();
  clock.advance(2000);
  assert.deepEqual(periods(changes).on, [300]);
  await chime.close();
});

test("mode 'none' never touches the line", async () => {
  const { clock, line, chime, changes } = rig({ mode: 'none' });
  line.failNextWrites(100);
  assert.deepEqual(chime.ring(), { started: false, reason: 'mode-none' });
  clock.advance(1000);
  await chime.close();
  assert.deepEqual(changes, []);
});

test('a failing write forces off and rethrows as HalError io; the chime recovers', async () => {
  const { clock, line, chime } = rig();
  line.failNextWrites(1);
  assert.throws(
    () => chime.ring(),
    (err) => err instanceof HalError && err.kind === 'io' && err.cause instanceof Error,
  );
  assert.equal(line.read(), false);
  assert.equal(chime.ringing, false);
  clock.advance(300);
  assert.deepEqual(chime.ring(), { started: true });
  await chime.close();
});

test('if the off-write fails the safety timer retries it at maxOnMs', async () => {
  const { clock, line, chime } = rig({ pulseMs: 100 });
  chime.ring();
  line.failNextWrites(1);
  clock.advance(100);
  assert.equal(line.read(), true, 'the off-write failed');
  clock.advance(900);
  assert.equal(line.read(), false, 'forced off at maxOnMs');
  await chime.close();
  assert.equal(clock.pendingTimers(), 0);
});

test('close forces the line off mid-ring; ring after close throws HalError closed', async () => {
  const { clock, line, chime } = rig();
  chime.ring();
  await chime.close();
  await chime.close();
  assert.equal(line.peek(), false);
  assert.equal(clock.pendingTimers(), 0);
  assert.throws(
    () => chime.ring(),
    (err) => err instanceof HalError && err.kind === 'closed',
  );
});

test('nonsense options throw a TypeError naming the field', () => {
  assert.throws(() => rig({ pulseMs: Number.NaN }), /pulseMs/);
  assert.throws(() => rig({ minGapMs: -5 }), /minGapMs.*-5/);
  assert.throws(() => rig({ mode: 'electronic', pattern: [] }), /pattern/);
  assert.throws(() => rig({ mode: 'electronic', pattern: [{ onMs: 10, offMs: -1 }] }), /pattern\[0\]\.offMs/);
  assert.throws(() => rig({ mode: 'loud' as never }), /mode/);
});
