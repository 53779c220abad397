import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const REPO = resolve(import.meta.dirname, '..');

/** Every non-test TypeScript source under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, encoding: 'utf8' })
    .filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts') && !f.includes('gen/'),
    )
    .map((f) => join(dir, f));
}

/** The top-level folders a source file imports from, by its relative import specifiers. */
function importedFolders(file: string, text = readFileSync(join(REPO, file), 'utf8')): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const spec = m[1] as string;
    const target = relative(REPO, resolve(REPO, dirname(file), spec));
    found.set(target.split('/')[0] as string, spec);
  }
  return found;
}

/**
 * Which folders each folder's shipped code may import. The hub reaches
 * doorbells only over the wire (proto/), never through the board's code;
 * the wire contract and the shared code import neither side.
 */
const ALLOWED: Record<string, readonly string[]> = {
  hub: ['hub', 'proto', 'common'],
  proto: ['proto', 'common'],
  common: ['common'],
  hal: ['hal', 'common'],
};

for (const [folder, allowed] of Object.entries(ALLOWED)) {
  test(`${folder}/ imports only from ${allowed.join(', ')}`, () => {
    const files = sources(folder);
    assert.ok(files.length > 0, `no sources found under ${folder}/`);
    const wrong: string[] = [];
    for (const file of files) {
      for (const [target, spec] of importedFolders(file)) {
        if (!allowed.includes(target)) wrong.push(`${file} imports '${spec}'`);
      }
    }
    assert.deepEqual(wrong, []);
  });
}

test('the board side never imports the hub', () => {
  const wrong: string[] = [];
  for (const folder of ['firmware', 'media', 'hal']) {
    for (const file of sources(folder)) {
      for (const [target, spec] of importedFolders(file))
        if (target === 'hub') wrong.push(`${file} imports '${spec}'`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the import scanner finds a forbidden import: the hub once took the role table from firmware/', () => {
  const text =
    "import { ROLE_NAMES } from '../firmware/trust/roles.js';\nconst x = await import('../media/ring.js');\n";
  const folders = importedFolders('hub/cli.ts', text);
  assert.deepEqual([...folders.keys()].sort(), ['firmware', 'media']);
  assert.equal(ALLOWED.hub?.includes('firmware'), false);
});
