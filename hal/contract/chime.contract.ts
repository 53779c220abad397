import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { nsToMs } from '../../common/clock.js';
import { settle, waitFor } from '../../test-support/wait-for.js';
import type { Chime, ChimeOptions } from '../chime.js';
import { defaultChimeOptions } from '../chime-plan.js';

export interface ChimeFixture {
  chime: Chime;
  /** The driven level right now (the output's read-back), synchronous. */
  lineLevel(): boolean;
  /** Observes the line's changes (sim: the virtual wire; linux: a loopback input). */
  observe(listener: (on: boolean, atNs: bigint) => void): () => void;
  close(): Promise<void>;
}

/** Generous slack for real timers on a loaded machine; exact timing is proven on a FakeClock. */
const SLACK_MS = 500;

async function withChime(
  open: (o: ChimeOptions) => Promise<ChimeFixture>,
  overrides: Partial<ChimeOptions>,
  body: (f: ChimeFixture, changes: Array<{ on: boolean; ms: number }>) => Promise<void>,
) {
  const f = await open({ ...defaultChimeOptions, ...overrides });
  const changes: Array<{ on: boolean; ms: number }> = [];
  const stop = f.observe((on, atNs) => changes.push({ on, ms: nsToMs(atNs) }));
  try {
    await body(f, changes);
  } finally {
    stop();
    await f.close();
  }
}

/** The Chime contract in real time, run against every backend. */
export async function runChimeContract(t: TestContext, open: (o: ChimeOptions) => Promise<ChimeFixture>) {
  await t.test('ring drives the line on before returning, then off after the pulse; busy meanwhile', () =>
    withChime(open, { pulseMs: 100 }, async (f, changes) => {
      assert.deepEqual(f.chime.ring(), { started: true });
      assert.equal(f.lineLevel(), true, 'on before ring() returned');
      assert.deepEqual(f.chime.ring(), { started: false, reason: 'busy' });
      await waitFor(() => changes.length >= 2, 'on then off');
      const [on, off] = changes;
      assert.ok(on?.on === true && off?.on === false);
      const heldMs = off.ms - on.ms;
      assert.ok(heldMs >= 80 && heldMs <= 100 + SLACK_MS, `pulse lasted ${heldMs} ms`);
    }),
  );

  await t.test('a 5 s pulse is capped at maxOnMs', () =>
    withChime(open, { pulseMs: 5000, maxOnMs: 200 }, async (f, changes) => {
      f.chime.ring();
      await waitFor(() => changes.length >= 2, 'the forced off');
      const [on, off] = changes;
      const heldMs = (off?.ms ?? 0) - (on?.ms ?? 0);
      assert.ok(heldMs <= 200 + SLACK_MS, `on for ${heldMs} ms`);
    }),
  );

  await t.test("mode 'none' never touches the line", () =>
    withChime(open, { mode: 'none' }, async (f, changes) => {
      assert.deepEqual(f.chime.ring(), { started: false, reason: 'mode-none' });
      await settle(50);
      assert.deepEqual(changes, []);
    }),
  );

  await t.test('close forces a ringing chime off', () =>
    withChime(open, { pulseMs: 1000 }, async (f, changes) => {
      f.chime.ring();
      await f.chime.close();
      assert.equal(f.chime.ringing, false);
      await waitFor(() => changes.at(-1)?.on === false, 'the line forced off');
    }),
  );
}
