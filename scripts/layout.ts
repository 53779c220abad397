// `node --import tsx scripts/layout.ts [--write]`: the "depends on" column of the layout
// table in docs/architecture.md, computed from the real import edges of the product's
// files. Without --write it prints the table's rows and exits 1 when the document differs.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..');

/** Folders that hold tools for developers, not the product: nothing in the product may import them. */
export const NOT_PRODUCT = ['test-support', 'bench', 'scripts'] as const;

/** Files that exist for tests though they live beside the product's code. */
const TEST_FILE =
  /(\.test\.ts|\/test-helpers\.ts|\/test-doubles\.ts|\/arbitraries\.ts|\/fake-rig\.ts|\/test-fixtures\.ts|\/broker-test-clients\.ts)$|\/contract\//;

export interface ImportEdge {
  /** Repository-relative path of the importing file. */
  from: string;
  /** Repository-relative path of the imported file (the `.ts` source). */
  to: string;
}

function topFolders(): string[] {
  return readdirSync(REPO, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && !['node_modules', 'dist'].includes(d.name))
    .filter((d) => d.name !== 'docs')
    .map((d) => d.name)
    .sort();
}

function tsFiles(dir: string): string[] {
  return (readdirSync(join(REPO, dir), { recursive: true, encoding: 'utf8' }) as string[])
    .filter((n) => n.endsWith('.ts') && !n.endsWith('.d.ts') && !n.includes('node_modules'))
    .map((n) => `${dir}/${n}`);
}

export const isTestFile = (path: string): boolean => TEST_FILE.test(path);

/** Every relative import (static, dynamic or re-export) of every `.ts` file, resolved to its source. */
export function importEdges(): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const dir of topFolders()) {
    for (const file of tsFiles(dir)) {
      const text = readFileSync(join(REPO, file), 'utf8');
      const specs = [
        ...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms),
        ...text.matchAll(/\bimport\(\s*'(\.{1,2}\/[^']+)'\s*\)/g),
      ].map((m) => m[1] as string);
      for (const spec of specs) {
        const target = relative(REPO, resolve(REPO, file, '..', spec)).replace(/\.js$/, '.ts');
        edges.push({ from: file, to: target });
      }
    }
  }
  return edges;
}

const folderOf = (path: string): string => path.split('/')[0] as string;

/** For each product folder, the other folders its product files import (test files left out). */
export function folderDependencies(edges: ImportEdge[] = importEdges()): Map<string, string[]> {
  const deps = new Map<string, Set<string>>();
  for (const folder of topFolders()) deps.set(folder, new Set());
  for (const { from, to } of edges) {
    if (isTestFile(from)) continue;
    const a = folderOf(from);
    const b = folderOf(to);
    if (a !== b) deps.get(a)?.add(b);
  }
  return new Map([...deps].map(([k, v]) => [k, [...v].sort()]));
}

/** The layout table's "depends on" cell for a folder. */
export function dependsOnCell(folder: string, deps: Map<string, string[]>): string {
  if ((NOT_PRODUCT as readonly string[]).includes(folder)) {
    // Developer tools may use anything; their cell says what they are for rather than listing it all.
    return folder === 'bench' ? 'everything' : '—';
  }
  const list = deps.get(folder) ?? [];
  return list.length === 0 ? '—' : list.join(', ');
}

/** The document with each layout row's last cell replaced by the computed one. */
export function withComputedColumn(markdown: string, deps: Map<string, string[]>): string {
  return markdown.replace(
    /^(\| `([a-z-]+)\/` +\|.*\|)[^|\n]*\|$/gm,
    (_row, head: string, folder: string) => `${head} ${dependsOnCell(folder, deps)} |`,
  );
}

/** Folder names in the layout table, in order, and their "depends on" cells as written. */
export function layoutRows(markdown: string): Array<{ folder: string; dependsOn: string }> {
  return [...markdown.matchAll(/^\| `([a-z-]+)\/` +\|.*\|([^|\n]*)\|$/gm)].map((m) => ({
    folder: m[1] as string,
    dependsOn: (m[2] as string).trim(),
  }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = join(REPO, 'docs', 'architecture.md');
  const text = readFileSync(path, 'utf8');
  const deps = folderDependencies();
  if (process.argv.includes('--write')) {
    writeFileSync(path, withComputedColumn(text, deps));
    process.stdout.write(`${path}: layout column rewritten; run npm run format to realign the table\n`);
  } else {
    let stale = 0;
    for (const { folder, dependsOn } of layoutRows(text)) {
      const cell = dependsOnCell(folder, deps);
      if (cell !== dependsOn) stale++;
      process.stdout.write(`${folder}/: ${cell}${cell === dependsOn ? '' : `   (docs say: ${dependsOn})`}\n`);
    }
    process.exit(stale === 0 ? 0 : 1);
  }
}
