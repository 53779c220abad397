import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { docCommand, REPO, runDocCommand } from '../test-support/doc-commands.js';

const run = promisify(execFile);

/** The four commands package.json installs, by the name each reports in `--version`. */
const COMMANDS = ['doorbell', 'doorbell-hub', 'doorbell-flash', 'doorbell-rig'];

test('the README install steps put doorbell, doorbell-hub, doorbell-flash and doorbell-rig on PATH, each running from dist/', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-install-'));
  try {
    // A copy of the checkout, so that building into its dist/ cannot disturb other tests.
    const checkout = join(dir, 'open-doorbell');
    const { stdout: listed } = await run('git', ['ls-files', '-z'], { cwd: REPO, maxBuffer: 16 << 20 });
    for (const file of listed.split('\0').filter((f) => f !== '')) {
      await mkdir(dirname(join(checkout, file)), { recursive: true });
      await cp(join(REPO, file), join(checkout, file), { preserveTimestamps: true });
    }
    await symlink(join(REPO, 'node_modules'), join(checkout, 'node_modules'));
    const prefix = join(dir, 'prefix');
    const env = { npm_config_prefix: prefix };

    for (const documented of [
      docCommand('README.md', 'npm run build'),
      docCommand('README.md', 'npm install -g .'),
    ]) {
      const step = runDocCommand(documented.text, { cwd: checkout, env });
      const code = await step.exited(120_000);
      assert.equal(code, 0, `${documented.text}: ${step.stderr}`);
    }

    const path = `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`;
    for (const name of COMMANDS) {
      // Run from another directory, by name, as a user would once it is on PATH.
      const { stdout } = await run(name, ['--version'], { cwd: dir, env: { ...process.env, PATH: path } });
      assert.equal(stdout, `${name} 0.1.0\n`, `${name} --version`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
