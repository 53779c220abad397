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

test('the hub and the doorbell meet only on the wire: no product import between hub/ and firmware/ (tests may use one to check the other)', () => {
  const wrong = edges
    .filter(product)
    .filter((e) => {
      const pair = `${folderOf(e.from)}->${folderOf(e.to)}`;
      return pair === 'hub->firmware' || pair === 'firmware->hub';
    })
    .map((e) => `${e.from} -> ${e.to}`);
  assert.deepEqual(wrong, []);
});

test('the import reader finds static, re-exported and dynamic imports, and the writer replaces only the last cell', () => {
  const fromThisFile = edges.filter((e) => e.from === 'scripts/layout.test.ts').map((e) => e.to);
  assert.deepEqual(fromThisFile, ['scripts/layout.ts']);
  // firmware/cli.ts loads the daemon lazily; hal/index.ts re-exports its parts.
  assert.ok(edges.some((e) => e.from === 'hal/index.ts' && e.to === 'hal/sim/wire-client.ts'));
  const md = '| `a/` | what | old |\n| `b/` | x \\| y | old |\ntext\n';
  const deps = new Map([
    ['a', ['c', 'd']],
    ['b', []],
  ]);
  assert.equal(withComputedColumn(md, deps), '| `a/` | what | c, d |\n| `b/` | x \\| y | — |\ntext\n');
});
