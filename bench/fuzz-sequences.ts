import { randomInt } from 'node:crypto';
import fc from 'fast-check';
import { type Logger, silentLogger } from '../common/logger.js';
import { stepArbitrary } from './fuzz/sequence-steps.js';
import { World, type WorldStats } from './fuzz/sequence-world.js';
import type { BenchArgs } from './run.js';

/** How long fast-check may spend shrinking a failure (the whole check of one seed). */
const SHRINK_LIMIT_MS = 180_000;

export interface SequenceOptions {
  /** Steps to run in all (each run is a fresh doorbell); at least this many are run. */
  steps: number;
  /** fast-check seed of the first run (uint32); random when unset, always reported. */
  seed?: number;
  /** Longest sequence of one run; default 1000. */
  maxSteps?: number;
  /** Where the doorbells' state directories go; default the OS temp directory. */
  dir?: string;
  /** The doorbells' logger; silent by default. */
  logger?: Logger;
  progress?: (line: string) => void;
}

export interface SequenceResult extends Record<string, unknown> {
  metric: 'fuzz-sequences';
  seed: number;
  steps: number;
  runs: number;
  restarts: number;
  presses: number;
  owner_checks: number;
  steps_by_kind: Record<string, number>;
  answers_by_kind: Record<string, number>;
  /** The first broken invariant, shrunk to a shortest sequence, with the seed and path to replay it. */
  failure: string | undefined;
  ok: boolean;
  duration_s: number;
}

/**
 * Stateful, model-based fuzzing of the command path (bench/fuzz/sequence-world.ts
 * lists the invariants checked after every step): random sequences of
 * commands from keys of every role, valid and bent, strangers' bytes and
 * pairing attempts, replays of captured commands, restarts (clean and
 * crash), clock faults and presses. Each run starts from a fresh doorbell
 * with an owner paired; runs continue with the next seed until `steps`
 * steps ran. A failure is shrunk by fast-check to a shortest sequence.
 */
export async function fuzzSequences(o: SequenceOptions): Promise<SequenceResult> {
  const started = process.hrtime.bigint();
  const seed = o.seed ?? randomInt(0, 2 ** 32 - 1);
  const progress = o.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const maxSteps = o.maxSteps ?? 1_000;
  const logger = o.logger ?? silentLogger();
  const totals: WorldStats = { steps: 0, restarts: 0, presses: 0, ownerChecks: 0, byStep: {}, answers: {} };
  let runs = 0;
  let failure: string | undefined;
  let lastReport = 0;
  progress(`fuzz-sequences: seed ${seed}, ${o.steps} steps, runs of up to ${maxSteps}`);
  while (totals.steps < o.steps && failure === undefined) {
    const runSeed = (seed + runs) >>> 0;
    let counted = false;
    let firstError: string | undefined;
    const property = fc.asyncProperty(
      fc.commands([stepArbitrary()], { maxCommands: maxSteps, size: 'max' }),
      async (steps: Iterable<fc.AsyncCommand<object, World>>) => {
        const world = await World.create(runSeed, logger, o.dir);
        try {
          await fc.asyncModelRun(() => ({ model: {}, real: world }), steps);
        } catch (err) {
          firstError ??= String(err);
          throw err;
        } finally {
          // Only the first run of a seed counts; shrinking re-runs shorter sequences.
          if (!counted) {
            counted = true;
            add(totals, world.stats);
          }
          await world.dispose();
        }
      },
    );
    // Shrinking re-runs shortened sequences on fresh doorbells: bounded, so a failure is reported in minutes.
    const result = await fc.check(property, {
      seed: runSeed,
      numRuns: 1,
      interruptAfterTimeLimit: SHRINK_LIMIT_MS,
    });
    runs += 1;
    if (result.failed || firstError !== undefined) {
      const shrunk = result.counterexample?.[0];
      failure =
        `seed ${runSeed}: ${firstError ?? String(result.errorInstance)}\n` +
        `shrunk (${result.numShrinks} shrinks) to: ${shrunk === undefined ? '?' : String(shrunk)}`;
    }
    if (totals.steps - lastReport >= 10_000 || failure !== undefined || totals.steps >= o.steps) {
      lastReport = totals.steps;
      progress(
        `fuzz-sequences: ${totals.steps} steps in ${runs} runs, ${totals.restarts} restarts${failure ? ', FAILED' : ''}`,
      );
    }
  }
  return {
    metric: 'fuzz-sequences',
    seed,
    steps: totals.steps,
    runs,
    restarts: totals.restarts,
    presses: totals.presses,
    owner_checks: totals.ownerChecks,
    steps_by_kind: totals.byStep,
    answers_by_kind: totals.answers,
    failure,
    ok: failure === undefined,
    duration_s: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

function add(totals: WorldStats, run: WorldStats): void {
  totals.steps += run.steps;
  totals.restarts += run.restarts;
  totals.presses += run.presses;
  totals.ownerChecks += run.ownerChecks;
  for (const [k, v] of Object.entries(run.byStep)) {
    const kind = k.replace(/\(.*$/, '');
    totals.byStep[kind] = (totals.byStep[kind] ?? 0) + v;
  }
  for (const [k, v] of Object.entries(run.answers)) totals.answers[k] = (totals.answers[k] ?? 0) + v;
}

/** `npm run bench -- fuzz-sequences [--steps N] [--seed S]`. */
export function fuzzSequencesBench(args: BenchArgs): Promise<Record<string, unknown>> {
  return fuzzSequences({ steps: args.steps, ...(args.seed === undefined ? {} : { seed: args.seed }) });
}
