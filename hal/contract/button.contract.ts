import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { settle, waitFor } from '../../test-support/wait-for.js';
import type { Button, ButtonEvent, ButtonOptions } from '../button.js';

/** Something that can play physical button actions on the button's wire. */
export interface ButtonWire {
  press(ms: number): Promise<void>;
  hold(ms: number): Promise<void>;
  bounce(edges: number, spacingMs: number, settleMs?: number): Promise<void>;
  noise(edges: number, spacingMs: number): Promise<void>;
}

export interface ButtonFixture {
  button: Button;
  wire: ButtonWire;
  close(): Promise<void>;
}

const options: ButtonOptions = { minPressMs: 30, lockoutMs: 500, holdMs: 1000 };

async function withButton(
  open: (o: ButtonOptions) => Promise<ButtonFixture>,
  body: (wire: ButtonWire, events: ButtonEvent[]) => Promise<void>,
): Promise<void> {
  const f = await open(options);
  const events: ButtonEvent[] = [];
  f.button.subscribe((e) => events.push(e));
  try {
    await body(f.wire, events);
  } finally {
    await f.close();
  }
}

const types = (events: ButtonEvent[]) => events.map((e) => e.type);

/**
 * The Button contract in real time, run against every backend. Tolerances
 * are generous; exact timing logic is proven with a FakeClock in button.test.ts.
 */
export async function runButtonContract(t: TestContext, open: (o: ButtonOptions) => Promise<ButtonFixture>) {
  await t.test('a clean press gives press then release', () =>
    withButton(open, async (wire, events) => {
      await wire.press(120);
      await waitFor(() => events.length >= 2, 'press and release');
      assert.deepEqual(types(events), ['press', 'release']);
      const release = events[1];
      assert.ok(
        release?.type === 'release' && release.heldMs >= 100,
        `held ${JSON.stringify(release?.type)}`,
      );
    }),
  );

  await t.test('a bouncing press gives exactly one press', () =>
    withButton(open, async (wire, events) => {
      await wire.bounce(7, 0.5, 150);
      await waitFor(() => events.length >= 2, 'press and release');
      await settle(100);
      assert.deepEqual(types(events), ['press', 'release']);
    }),
  );

  await t.test('chatter shorter than minPressMs gives nothing', () =>
    withButton(open, async (wire, events) => {
      await wire.noise(40, 2);
      await settle(100);
      assert.deepEqual(types(events), []);
    }),
  );

  await t.test('a long hold gives one hold event before the release', () =>
    withButton(open, async (wire, events) => {
      await wire.hold(1300);
      await waitFor(() => events.length >= 3, 'press, hold and release');
      assert.deepEqual(types(events), ['press', 'hold', 'release']);
    }),
  );
}
