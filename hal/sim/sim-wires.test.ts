import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HalError } from '../errors.js';
import { CHIME_HISTORY_LIMIT, SimWires } from './sim-wires.js';

function recordButton(wires: SimWires) {
  const edges: Array<{ level: boolean; atNs: bigint }> = [];
  wires.buttonLine.watch((level, atNs) => edges.push({ level, atNs }));
  return edges;
}

test('press asserts for about ms with two clean edges', async () => {
  const wires = new SimWires();
  const edges = recordButton(wires);
  await wires.press(40);
  assert.deepEqual(
    edges.map((e) => e.level),
    [true, false],
  );
  const [down, up] = edges;
  assert.ok(down && up);
  assert.ok(up.atNs - down.atNs >= 39_000_000n, 'held at least the requested time');
  assert.equal(wires.buttonState(), false);
});

test('bounce toggles the given number of edges, sub-ms spacing allowed, and ends asserted then released', async () => {
  const wires = new SimWires();
  const edges = recordButton(wires);
  await wires.bounce(7, 0.3, 20);
  assert.deepEqual(
    edges.map((e) => e.level),
    [true, false, true, false, true, false, true, false],
  );
  edges.length = 0;
  await wires.bounce(6, 0.2, 5); // even: one extra edge asserts
  assert.equal(edges.length, 8);
  assert.equal(edges.at(-2)?.level, true);
});

test('noise always ends deasserted', async () => {
  const wires = new SimWires();
  const edges = recordButton(wires);
  await wires.noise(5, 0.5);
  assert.equal(edges.length, 6);
  assert.equal(edges.at(-1)?.level, false);
  assert.equal(wires.buttonState(), false);
});

test('bad arguments reject with a TypeError naming the field and value', async () => {
  const wires = new SimWires();
  await assert.rejects(wires.press(Number.POSITIVE_INFINITY), /ms must be .* got Infinity/);
  await assert.rejects(wires.press(-1), TypeError);
  await assert.rejects(wires.hold(600_001), TypeError);
  await assert.rejects(wires.bounce(2.5, 1), /edges .* got 2\.5/);
  await assert.rejects(wires.bounce(3, 1, Number.NaN), /settleMs/);
  await assert.rejects(wires.noise(10_001, 1), /edges/);
  await assert.rejects(wires.noise(3, -0.1), /spacingMs/);
  assert.equal(wires.buttonState(), false);
});

test('an aborted action releases the button at once', async () => {
  const wires = new SimWires();
  const controller = new AbortController();
  const pressing = wires.press(60_000, { signal: controller.signal });
  assert.equal(wires.buttonState(), true);
  controller.abort();
  await assert.rejects(pressing, { name: 'AbortError' });
  assert.equal(wires.buttonState(), false);
});

test('chime history records changes with timestamps, bounded to the last 10k; reset clears it', () => {
  const wires = new SimWires();
  const seen: boolean[] = [];
  const off = wires.onChime((on) => seen.push(on));
  wires.chimeLine.write(true);
  wires.chimeLine.write(true); // not a change
  wires.chimeLine.write(false);
  off();
  assert.deepEqual(seen, [true, false]);
  const history = wires.chimeHistory();
  assert.deepEqual(
    history.map((h) => h.on),
    [true, false],
  );
  assert.ok((history[1]?.atNs ?? 0n) >= (history[0]?.atNs ?? 0n));
  for (let i = 0; i < CHIME_HISTORY_LIMIT + 10; i++) wires.chimeLine.write(i % 2 === 0);
  assert.equal(wires.chimeHistory().length, CHIME_HISTORY_LIMIT);
  wires.reset();
  assert.deepEqual(wires.chimeHistory(), []);
});

test('led state and onLed follow the LED line; closed wires throw HalError closed', async () => {
  const wires = new SimWires();
  const seen: boolean[] = [];
  wires.onLed((on) => seen.push(on));
  wires.ledLine.write(true);
  assert.equal(wires.ledState(), true);
  assert.deepEqual(seen, [true]);
  await wires.close();
  await assert.rejects(wires.press(1), (err) => err instanceof HalError && err.kind === 'closed');
});

test('chimeHistoryPage numbers changes absolutely and skips past the ones dropped from a full history', () => {
  const wires = new SimWires();
  for (let i = 0; i < CHIME_HISTORY_LIMIT + 5; i++) wires.chimeLine.write(i % 2 === 0);
  const page = wires.chimeHistoryPage(0, 3);
  assert.equal(page.first, 5, 'the five oldest were dropped');
  assert.equal(page.next, 8);
  assert.deepEqual(
    page.changes.map((c) => c.on),
    [false, true, false],
  );
  const end = wires.chimeHistoryPage(CHIME_HISTORY_LIMIT + 5, 3);
  assert.deepEqual(
    [end.first, end.next, end.changes.length],
    [CHIME_HISTORY_LIMIT + 5, CHIME_HISTORY_LIMIT + 5, 0],
  );
  wires.reset();
  assert.deepEqual(wires.chimeHistoryPage(0, 3), { first: 0, changes: [], next: 0 });
});

test('chimeOff resolves at once while the chime is off, and on its falling edge while it is on', async () => {
  const wires = new SimWires();
  await wires.chimeOff();
  wires.chimeLine.write(true);
  let resolved = false;
  const off = wires.chimeOff().then(() => {
    resolved = true;
  });
  await Promise.resolve();
  assert.equal(resolved, false, 'not while the chime is on');
  wires.chimeLine.write(false);
  await off;
  assert.equal(resolved, true);
});
