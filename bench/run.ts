// `npm run bench -- NAME [--presses N] [--cases N] [--steps N] [--seed S] [--mb N]`: runs one benchmark; the last line printed is one JSON object.
// `--presses` defaults to 1000: fewer makes p99 little more than the second-worst sample.
import { parseArgs } from 'node:util';
import { bootBench } from './boot.js';
import { footageBench } from './footage.js';
import { footageMemoryBench } from './footage-memory.js';
import { fuzzCommandsBench } from './fuzz-commands.js';
import { fuzzSequencesBench } from './fuzz-sequences.js';
import { mediaBench } from './media.js';
import { pressToEvent } from './press-to-event.js';
import { rigPressToChime } from './rig.js';

export interface BenchArgs {
  presses: number;
  /** fuzz-commands: how many cases to feed the verifier. */
  cases: number;
  /** fuzz-commands: the PRNG seed, to reproduce a run; random when unset. */
  seed?: number | undefined;
  /** fuzz-sequences (and the stateful phase of fuzz-commands): steps to run. */
  steps: number;
  /** footage-memory: the large clip's size in MiB. */
  mb: number;
  /** Where to write the raw samples as JSON, for analysis. */
  samplesFile?: string | undefined;
}

const BENCHMARKS: Record<string, (args: BenchArgs) => Promise<Record<string, unknown>>> = {
  'press-to-event': pressToEvent,
  'fuzz-commands': fuzzCommandsBench,
  'fuzz-sequences': fuzzSequencesBench,
  rig: rigPressToChime,
  boot: bootBench,
  media: mediaBench,
  footage: footageBench,
  'footage-memory': footageMemoryBench,
};

const { values, positionals } = parseArgs({
  options: {
    presses: { type: 'string', default: '1000' },
    cases: { type: 'string', default: '100000' },
    steps: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    samples: { type: 'string' },
    mb: { type: 'string', default: '500' },
  },
  allowPositionals: true,
  strict: true,
});
const name = positionals[0];
const bench = name ? BENCHMARKS[name] : undefined;
if (!bench) {
  process.stderr.write(
    `usage: npm run bench -- <${Object.keys(BENCHMARKS).join('|')}> [--presses N] [--samples FILE] [--cases N] [--steps N] [--seed S] [--mb N]\n`,
  );
  process.exit(2);
}
const pressesArg = values.presses;
const presses = Number(pressesArg);
if (!Number.isInteger(presses) || presses < 1 || presses > 100_000) {
  process.stderr.write(`--presses must be an integer from 1 to 100000, got '${pressesArg}'\n`);
  process.exit(2);
}
const cases = Number(values.cases);
if (!Number.isInteger(cases) || cases < 1 || cases > 10_000_000) {
  process.stderr.write(`--cases must be an integer from 1 to 10000000, got '${values.cases}'\n`);
  process.exit(2);
}
const steps = Number(values.steps);
if (!Number.isInteger(steps) || steps < 1 || steps > 100_000_000) {
  process.stderr.write(`--steps must be an integer from 1 to 100000000, got '${values.steps}'\n`);
  process.exit(2);
}
const seed = values.seed === undefined ? undefined : Number(values.seed);
if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff)) {
  process.stderr.write(`--seed must be an integer from 0 to 4294967295, got '${values.seed}'\n`);
  process.exit(2);
}
const mb = Number(values.mb);
if (!Number.isInteger(mb) || mb < 16 || mb > 1000) {
  process.stderr.write(`--mb must be an integer from 16 to 1000, got '${values.mb}'\n`);
  process.exit(2);
}
const result = await bench({ presses, cases, steps, seed, mb, samplesFile: values.samples });
process.stdout.write(`${JSON.stringify(result)}\n`);
