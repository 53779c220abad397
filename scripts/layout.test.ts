import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  dependsOnCell,
  folderDependencies,
  type ImportEdge,
  importEdges,
  isTestFile,
  layoutRows,
  NOT_PRODUCT,
  REPO,
  withComputedColumn,
} from './layout.js';

const edges = importEdges();
const folderOf = (path: string): string => path.split('/')[0] as string;
const product = (e: ImportEdge): boolean =>
  !isTestFile(e.from) && !(NOT_PRODUCT as readonly string[]).includes(folderOf(e.from));

test("the layout table's 'depends on' column is what the product's files import (node --import tsx scripts/layout.ts --write)", () => {
  const text = readFileSync(join(REPO, 'docs', 'architecture.md'), 'utf8');
  const rows = layoutRows(text);
  const deps = folderDependencies(edges);
  assert.deepEqual(
    rows.map((r) => r.folder).sort(),
    [...deps.keys()].sort(),
    'one row for every top-level folder',
  );
  assert.deepEqual(
    rows.map((r) => `${r.folder}: ${r.dependsOn}`),
    rows.map((r) => `${r.folder}: ${dependsOnCell(r.folder, deps)}`),
  );
});

test('no product file imports test support, benchmarks or developer scripts', () => {
  const wrong = edges
    .filter((e) => product(e) && (NOT_PRODUCT as readonly string[]).includes(folderOf(e.to)))
    .map((e) => `${e.from} -> ${e.to}`);
  assert.deepEqual(wrong, []);
});

/**
 * Which folders each folder's product code may import. The hub reaches doorbells only
 * over the wire (proto/), never through the board's code; the wire contract and the
 * shared code import neither side.
 */
const ALLOWED: Record<string, readonly string[]> = {
  hub: ['hub', 'proto', 'common'],
  proto: ['proto', 'common'],
  common: ['common'],
  hal: ['hal', 'common'],
};

for (const [folder, allowed] of Object.entries(ALLOWED)) {
  test(`${folder}/ imports only from ${allowed.join(', ')}`, () => {
    const mine = edges.filter((e) => product(e) && folderOf(e.from) === folder);
    assert.ok(mine.length > 0, `no imports found under ${folder}/`);
    assert.deepEqual(
      mine.filter((e) => !allowed.includes(folderOf(e.to))).map((e) => `${e.from} -> ${e.to}`),
      [],
    );
  });
}

test('the board side (firmware, media, hal, board) never imports the hub', () => {
  const wrong = edges
    .filter((e) => product(e) && ['firmware', 'media', 'hal', 'board'].includes(folderOf(e.from)))
    .filter((e) => folderOf(e.to) === 'hub')
    .map((e) => `${e.from} -> ${e.to}`);
  assert.deepEqual(wrong, []);
});

test('the import reader finds static, re-exported and dynamic imports, and the writer replaces only the last cell', () => {
  const fromThisFile = edges.filter((e) => e.from === 'scripts/layout.test.ts').map((e) => e.to);
  assert.deepEqual(fromThisFile, ['scripts/layout.ts']);
  // The hub once took the role table from firmware/: such an edge would be refused above.
  assert.equal(ALLOWED.hub?.includes('firmware'), false);
  // firmware/cli.ts loads the daemon lazily; hal/index.ts re-exports its parts.
  assert.ok(edges.some((e) => e.from === 'hal/index.ts' && e.to === 'hal/sim/wire-client.ts'));
  const md = '| `a/` | what | old |\n| `b/` | x \\| y | old |\ntext\n';
  const deps = new Map([
    ['a', ['c', 'd']],
    ['b', []],
  ]);
  assert.equal(withComputedColumn(md, deps), '| `a/` | what | c, d |\n| `b/` | x \\| y | — |\ntext\n');
});
