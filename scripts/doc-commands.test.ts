import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  commandsIn,
  type DocCommand,
  docCommands,
  documentedFiles,
  matching,
  REPO,
  withValues,
  words,
} from '../test-support/doc-commands.js';

/** Commands of the operating system, not of this project: the docs may show them without a test. */
const SYSTEM = new Set(['sudo', 'apt-get', 'git', 'systemctl', 'printf']);

/** The project's executables: the docs show them as `npm run NAME -- ...`, which works without installing. */
const BARE = ['doorbell', 'doorbell-hub', 'doorbell-flash', 'doorbell-rig'];

const all = (): DocCommand[] => documentedFiles().flatMap((f) => docCommands(f));
const where = (c: DocCommand): string => `${c.file}:${c.line}: ${c.text}`;

/** Every `docCommand('file', 'prefix')` call in the tests and their helpers. */
function claims(): { file: string; prefix: string; in: string }[] {
  const out: { file: string; prefix: string; in: string }[] = [];
  const dirs = readdirSync(REPO, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !['node_modules', 'dist', '.git'].includes(d.name))
    .map((d) => d.name);
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(join(REPO, dir), { recursive: true, encoding: 'utf8' });
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.endsWith('.ts') || name.includes('node_modules')) continue;
      const path = `${dir}/${name}`;
      if (path === 'test-support/doc-commands.ts' || path === 'scripts/doc-commands.test.ts') continue;
      const text = readFileSync(join(REPO, path), 'utf8');
      for (const m of text.matchAll(/docCommand\(\s*'([^']+)',\s*'([^']+)'/g)) {
        out.push({ file: m[1] as string, prefix: m[2] as string, in: path });
      }
    }
  }
  return out;
}

test('every project command in the docs is run, as written, by a test', () => {
  const taken = claims();
  // `npm test` is what CI runs, as written.
  if (/^npm test$/m.test(readFileSync(join(REPO, '.ci/run'), 'utf8'))) {
    taken.push({ file: 'README.md', prefix: 'npm test', in: '.ci/run' });
  }
  const commands = all();
  const takenCommands = new Set(
    taken.flatMap((t) =>
      matching(
        commands.filter((c) => c.file === t.file),
        t.prefix,
      ),
    ),
  );
  const untested = commands.filter((c) => !SYSTEM.has(words(c.text)[0] ?? '') && !takenCommands.has(c));
  assert.deepEqual(
    untested.map(where),
    [],
    'take each with docCommand(file, prefix) in the test that runs it',
  );
});

test('every docCommand() in the tests finds exactly one documented command', () => {
  const stale: string[] = [];
  for (const t of claims()) {
    const n = matching(docCommands(t.file), t.prefix).length;
    if (n !== 1) stale.push(`${t.in}: docCommand('${t.file}', '${t.prefix}') matches ${n} commands`);
  }
  assert.deepEqual(stale, []);
});

test('the docs run the executables through npm run, and every npm script they name exists', () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const wrong: string[] = [];
  for (const c of all()) {
    const w = words(c.text);
    if (BARE.includes(w[0] ?? '')) wrong.push(`${where(c)}  (write: npm run ${w[0]} -- ...)`);
    for (let i = 0; i + 2 < w.length + 1; i++) {
      if (
        w[i] === 'npm' &&
        w[i + 1] === 'run' &&
        w[i + 2] !== undefined &&
        !((w[i + 2] as string) in pkg.scripts)
      ) {
        wrong.push(`${where(c)}  (no npm script '${w[i + 2]}')`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('commands are read from sh blocks only, continuations joined and comments dropped', () => {
  const md = [
    '```sh',
    'npm run doorbell -- run --config doorbell.json   # on the board',
    'npm run doorbell-hub -- pair \\',
    "  --code 'odb1:a b' --recipient age1...",
    '# a comment line',
    '```',
    '```json',
    '{ "not": "a command" }',
    '```',
  ].join('\n');
  const found = commandsIn('x.md', md);
  assert.deepEqual(
    found.map((c) => [c.line, c.text]),
    [
      [2, 'npm run doorbell -- run --config doorbell.json'],
      [3, "npm run doorbell-hub -- pair --code 'odb1:a b' --recipient age1..."],
    ],
  );
  assert.deepEqual(words(found[1]?.text ?? ''), [
    'npm',
    'run',
    'doorbell-hub',
    '--',
    'pair',
    '--code',
    'odb1:a b',
    '--recipient',
    'age1...',
  ]);
  assert.equal(withValues(found[1] as DocCommand, { 'age1...': 'age1xyz' }).endsWith('age1xyz'), true);
  assert.throws(() => withValues(found[0] as DocCommand, { 'odb1:...': 'x' }), /is not in/);
});

test('a claim equal to a whole command takes only that one; otherwise it takes the commands it starts', () => {
  const found = commandsIn(
    'x.md',
    [
      '```sh',
      'npm run bundle',
      'npm run bundle -- --key k',
      'npm run bundle -- --key k --hardware h',
      '```',
    ].join('\n'),
  );
  assert.deepEqual(
    matching(found, 'npm run bundle').map((c) => c.line),
    [2],
  );
  assert.deepEqual(
    matching(found, 'npm run bundle -- --key').map((c) => c.line),
    [3, 4],
  );
  assert.deepEqual(matching(found, 'npm run bundles'), []);
});
