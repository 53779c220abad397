// `npm run bench -- NAME [--presses N]`: runs one benchmark; the last line printed is one JSON object.
import { parseArgs } from 'node:util';
import { pressToEvent } from './press-to-event.js';

export interface BenchArgs {
  presses: number;
  /** Where to write the raw samples as JSON, for analysis. */
  samplesFile?: string | undefined;
}

const BENCHMARKS: Record<string, (args: BenchArgs) => Promise<Record<string, unknown>>> = {
  'press-to-event': pressToEvent,
};

const { values, positionals } = parseArgs({
  options: { presses: { type: 'string', default: '1000' }, samples: { type: 'string' } },
  allowPositionals: true,
  strict: true,
});
const name = positionals[0];
const bench = name ? BENCHMARKS[name] : undefined;
if (!bench) {
  process.stderr.write(
    `usage: npm run bench -- <${Object.keys(BENCHMARKS).join('|')}> [--presses N] [--samples FILE]\n`,
  );
  process.exit(2);
}
const presses = Number(values.presses);
if (!Number.isInteger(presses) || presses < 1 || presses > 100_000) {
  process.stderr.write(`--presses must be an integer from 1 to 100000, got '${values.presses}'\n`);
  process.exit(2);
}
const result = await bench({ presses, samplesFile: values.samples });
process.stdout.write(`${JSON.stringify(result)}\n`);
