import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');

test('the coverage summary adds up lines and branches per top-level folder', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coverage-summary-'));
  try {
    const counts = (lt: number, lc: number, bt: number, bc: number) => ({
      lines: { total: lt, covered: lc },
      branches: { total: bt, covered: bc },
    });
    const file = join(dir, 'summary.json');
    await writeFile(
      file,
      JSON.stringify({
        total: counts(40, 30, 10, 5),
        [join(ROOT, 'hub', 'a.ts')]: counts(10, 10, 4, 1),
        [join(ROOT, 'hub', 'commands', 'b.ts')]: counts(10, 0, 0, 0),
        [join(ROOT, 'proto', 'c.ts')]: counts(20, 20, 6, 4),
      }),
    );
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/coverage-summary.ts', file], {
      cwd: ROOT,
    });
    assert.match(stdout, /^hub +2 +50\.0% +25\.0%$/m);
    assert.match(stdout, /^proto +1 +100\.0% +66\.7%$/m);
    assert.match(stdout, /^all +75\.0% +50\.0%$/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
