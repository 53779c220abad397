import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock, msToNs } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { type ButtonEvent, type ButtonOptions, DebouncedButton, defaultButtonOptions } from './button.js';
import { HalError } from './errors.js';
import { SimInputLine } from './sim/sim-lines.js';

function rig(options: ButtonOptions = defaultButtonOptions) {
  const clock = new FakeClock();
  const line = new SimInputLine('button', () => clock.nowNs());
  const button = new DebouncedButton(line, options, { clock, logger: silentLogger() });
  const events: ButtonEvent[] = [];
  button.subscribe((e) => events.push(e));
  const types = () => events.map((e) => e.type);
  /** Toggles the line `edges` times, `spacingMs` apart, starting from deasserted. */
  const toggle = (edges: number, spacingMs: number) => {
    for (let i = 0; i < edges; i++) {
      line.set(i % 2 === 0);
      clock.advance(spacingMs);
    }
  };
  return { clock, line, button, events, types, toggle };
}

test('a clean press gives press at once after minPressMs, then release', async () => {
  const { clock, line, button, events, types } = rig();
  const start = clock.nowNs();
  line.set(true);
  clock.advance(29);
  assert.deepEqual(types(), []);
  clock.advance(1);
  assert.deepEqual(events, [{ type: 'press', atNs: start, recognisedAtNs: start + msToNs(30) }]);
  clock.advance(70);
  line.set(false);
  clock.advance(30);
  assert.deepEqual(types(), ['press', 'release']);
  assert.deepEqual(events[1], { type: 'release', atNs: start + msToNs(100), heldMs: 100 });
  await button.close();
  assert.equal(clock.pendingTimers(), 0);
});

test('a bounce storm of 50 edges in 20 ms that settles asserted gives exactly one press', async () => {
  const { clock, line, button, types, toggle } = rig();
  toggle(50, 0.4); // 50 edges in 20 ms, ends deasserted
  line.set(true); // settles asserted
  clock.advance(200);
  line.set(false);
  clock.advance(100);
  assert.deepEqual(types(), ['press', 'release']);
  await button.close();
});

test('chatter that never stays asserted for minPressMs gives nothing', async () => {
  const { clock, button, types, toggle } = rig();
  toggle(1000, 7); // 7 ms high, 7 ms low, ... for 7 s
  clock.advance(1000);
  assert.deepEqual(types(), []);
  await button.close();
});

test('a press shorter than minPressMs gives nothing', async () => {
  const { clock, line, button, types } = rig();
  line.set(true);
  clock.advance(29.9);
  line.set(false);
  clock.advance(1000);
  assert.deepEqual(types(), []);
  await button.close();
});

test('a hold of 5 s or more gives exactly one hold event, and bounce on release is one release', async () => {
  const { clock, line, button, events, types, toggle } = rig();
  line.set(true);
  clock.advance(5000);
  assert.deepEqual(types(), ['press', 'hold']);
  assert.equal((events[1] as { heldMs: number }).heldMs, 5000);
  clock.advance(20_000);
  toggle(6, 1); // release bounce: ends asserted-then-deasserted pattern
  line.set(false);
  clock.advance(100);
  assert.deepEqual(types(), ['press', 'hold', 'release']);
  await button.close();
});

test('a short deassert glitch during a hold neither releases nor repeats the hold', async () => {
  const { clock, line, button, types } = rig();
  line.set(true);
  clock.advance(4999);
  line.set(false); // glitch straddles holdMs
  clock.advance(5);
  line.set(true);
  clock.advance(100);
  assert.deepEqual(types(), ['press', 'hold']);
  clock.advance(10_000);
  assert.deepEqual(types(), ['press', 'hold']);
  await button.close();
});

test('presses that begin within the lockout are ignored until released; later presses count', async () => {
  const { clock, line, button, types } = rig();
  line.set(true);
  clock.advance(100);
  line.set(false);
  clock.advance(100); // released at +100 ms, lockout until +600 ms
  line.set(true);
  clock.advance(1000); // began in lockout, held past it: still ignored
  line.set(false);
  clock.advance(600);
  line.set(true);
  clock.advance(100);
  assert.deepEqual(types(), ['press', 'release', 'press']);
  await button.close();
});

test('a line already asserted at start is ignored until released', async () => {
  const clock = new FakeClock();
  const line = new SimInputLine('button', () => clock.nowNs());
  line.set(true);
  const button = new DebouncedButton(line, defaultButtonOptions, { clock, logger: silentLogger() });
  const seen: string[] = [];
  button.subscribe((e) => seen.push(e.type));
  clock.advance(10_000);
  line.set(false);
  clock.advance(100);
  line.set(true);
  clock.advance(100);
  assert.deepEqual(seen, ['press']);
  await button.close();
});

test('a listener that throws is logged and never breaks the button or other listeners', async () => {
  const { clock, line, button, types } = rig();
  let logged = 0;
  const logger = silentLogger();
  logger.error = (() => {
    logged++;
  }) as typeof logger.error;
  const noisy = new DebouncedButton(line, defaultButtonOptions, { clock, logger });
  const seen: string[] = [];
  noisy.subscribe(() => {
    throw new Error('listener bug');
  });
  noisy.subscribe((e) => seen.push(e.type));
  for (let i = 0; i < 2; i++) {
    line.set(true);
    clock.advance(100);
    line.set(false);
    clock.advance(1000);
  }
  assert.deepEqual(seen, ['press', 'release', 'press', 'release']);
  assert.equal(logged, 4);
  assert.deepEqual(types(), ['press', 'release', 'press', 'release']);
  await noisy.close();
  await button.close();
});

test('unsubscribe stops delivery; subscribe after close throws HalError closed; close is idempotent', async () => {
  const { clock, line, button, types } = rig();
  const extra: string[] = [];
  const off = button.subscribe((e) => extra.push(e.type));
  off();
  line.set(true);
  clock.advance(100);
  assert.deepEqual(extra, []);
  assert.deepEqual(types(), ['press']);
  await button.close();
  await button.close();
  assert.equal(clock.pendingTimers(), 0);
  assert.throws(
    () => button.subscribe(() => {}),
    (err) => err instanceof HalError && err.kind === 'closed',
  );
});

test('bad options throw a TypeError naming the field', () => {
  const clock = new FakeClock();
  const line = new SimInputLine('button');
  const deps = { clock, logger: silentLogger() };
  assert.throws(
    () => new DebouncedButton(line, { ...defaultButtonOptions, minPressMs: Number.NaN }, deps),
    /minPressMs/,
  );
  assert.throws(
    () => new DebouncedButton(line, { ...defaultButtonOptions, lockoutMs: -1 }, deps),
    /lockoutMs.*-1/,
  );
  assert.throws(() => new DebouncedButton(line, { ...defaultButtonOptions, holdMs: 10 }, deps), TypeError);
});
