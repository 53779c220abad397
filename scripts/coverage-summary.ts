/**
 * Prints line and branch coverage per top-level folder from c8's json-summary
 * (`.coverage/coverage-summary.json`, written by `npm test`), most covered last.
 * Usage: node --import tsx scripts/coverage-summary.ts [summary.json]
 */
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';

interface Counts {
  total: number;
  covered: number;
}
type Summary = Record<string, { lines: Counts; branches: Counts }>;

const ROOT = resolve(import.meta.dirname, '..');
const file = process.argv[2] ?? resolve(ROOT, '.coverage', 'coverage-summary.json');
const summary = JSON.parse(readFileSync(file, 'utf8')) as Summary;

const folders = new Map<string, { lines: Counts; branches: Counts; files: number }>();
for (const [path, counts] of Object.entries(summary)) {
  if (path === 'total') continue;
  const folder = relative(ROOT, path).split('/')[0] ?? path;
  const f = folders.get(folder) ?? {
    lines: { total: 0, covered: 0 },
    branches: { total: 0, covered: 0 },
    files: 0,
  };
  f.lines.total += counts.lines.total;
  f.lines.covered += counts.lines.covered;
  f.branches.total += counts.branches.total;
  f.branches.covered += counts.branches.covered;
  f.files += 1;
  folders.set(folder, f);
}
if (folders.size === 0) {
  process.stderr.write(`no covered files in ${file}\n`);
  process.exit(1);
}

const pct = (c: Counts): string => (c.total === 0 ? '-' : `${((100 * c.covered) / c.total).toFixed(1)}%`);
const rows = [...folders].sort((a, b) => a[0].localeCompare(b[0]));
const total = summary.total;
const out = (line: string): boolean => process.stdout.write(`${line}\n`);
out('coverage per folder (lines, branches; product code only, tests excluded)');
out(`${'folder'.padEnd(12)} ${'files'.padStart(5)} ${'lines'.padStart(8)} ${'branches'.padStart(9)}`);
for (const [name, f] of rows) {
  out(
    `${name.padEnd(12)} ${String(f.files).padStart(5)} ${pct(f.lines).padStart(8)} ${pct(f.branches).padStart(9)}`,
  );
}
if (total)
  out(
    `${'all'.padEnd(12)} ${''.padStart(5)} ${pct(total.lines).padStart(8)} ${pct(total.branches).padStart(9)}`,
  );
