import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { settle, waitFor } from '../../test-support/wait-for.js';
import { HalError } from '../errors.js';
import type { InputLine, Level, OutputLine } from '../lines.js';

/** An input and an output of one backend, plus a way to drive the input's wire. */
export interface LinePairFixture {
  input: InputLine;
  output: OutputLine;
  /** Sim: sets the virtual wire. Linux: writes an output wired to the input (loopback). */
  driveInput(level: Level): void;
  close(): Promise<void>;
}

const isClosed = (err: unknown) => err instanceof HalError && err.kind === 'closed';

/** The raw line contract, run against every backend. */
export async function runLineContract(t: TestContext, open: () => Promise<LinePairFixture>): Promise<void> {
  await t.test('an output reads back the level last written', async () => {
    const f = await open();
    try {
      f.output.write(true);
      assert.equal(f.output.read(), true);
      f.output.write(false);
      assert.equal(f.output.read(), false);
    } finally {
      await f.close();
    }
  });

  await t.test(
    'an input reads the driven level and reports each edge with a rising hrtime stamp',
    async () => {
      const f = await open();
      try {
        const edges: Array<{ level: Level; atNs: bigint }> = [];
        const unwatch = f.input.watch((level, atNs) => edges.push({ level, atNs }));
        const before = process.hrtime.bigint();
        f.driveInput(true);
        await waitFor(() => edges.length >= 1 && f.input.read(), 'the asserting edge');
        f.driveInput(false);
        await waitFor(() => edges.length >= 2 && !f.input.read(), 'the deasserting edge');
        assert.deepEqual(
          edges.map((e) => e.level),
          [true, false],
        );
        const [a, b] = edges;
        assert.ok(a && b && a.atNs >= before && b.atNs >= a.atNs, 'timestamps are hrtime and in order');
        unwatch();
        unwatch();
        f.driveInput(true);
        await waitFor(() => f.input.read(), 'the input to follow');
        await settle(50);
        assert.equal(edges.length, 2, 'no delivery after unwatch');
        f.driveInput(false);
      } finally {
        await f.close();
      }
    },
  );

  await t.test('closed lines throw HalError closed; close is idempotent', async () => {
    const f = await open();
    await f.input.close();
    await f.input.close();
    await f.output.close();
    await f.output.close();
    assert.throws(() => f.input.read(), isClosed);
    assert.throws(() => f.input.watch(() => {}), isClosed);
    assert.throws(() => f.output.write(true), isClosed);
    assert.throws(() => f.output.read(), isClosed);
    await f.close();
  });
}
