import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PRODUCT_VERSION } from '../common/cli-args.js';
import { REPO } from '../test-support/doc-commands.js';
import { type CliScript, runCli } from '../test-support/run-cli.js';

/** Each executable, the name it reports, a misspelt option with the one it means, and a command to misspell. */
const CLIS: Array<{ script: CliScript; name: string; typo: [string, string]; command?: [string, string] }> = [
  {
    script: 'firmware/cli.ts',
    name: 'doorbell',
    typo: ['--confg', '--config'],
    command: ['idenity', 'identity'],
  },
  { script: 'hub/cli.ts', name: 'doorbell-hub', typo: ['--brokr', '--broker'], command: ['rign', 'ring'] },
  {
    script: 'flash/cli.ts',
    name: 'doorbell-flash',
    typo: ['--bundel', '--bundle'],
    command: ['falsh', 'flash'],
  },
  {
    script: 'test-rig/cli.ts',
    name: 'doorbell-rig',
    typo: ['--suit', '--suite'],
    command: ['emualte', 'emulate'],
  },
  { script: 'scripts/bundle.ts', name: 'bundle', typo: ['--hardwre', '--hardware'] },
  {
    script: 'broker/make-broker-config.ts',
    name: 'make-broker-config',
    typo: ['--devcie', '--device'],
  },
];

test('the product version is the package version', async () => {
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };
  assert.equal(PRODUCT_VERSION, pkg.version);
});

for (const cli of CLIS) {
  describe(`${cli.name} follows the command-line conventions`, () => {
    test('--version and -V print the name and the product version and exit 0', async () => {
      for (const flag of ['--version', '-V']) {
        const r = await runCli(cli.script, [flag]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `${cli.name} ${PRODUCT_VERSION}\n`);
      }
    });

    test('a misspelt option: one line naming it and the nearest option, no help text, exit 2', async () => {
      const [typo, meant] = cli.typo;
      const r = await runCli(cli.script, [...(cli.command ? [cli.command[1]] : []), typo, 'x']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`unknown option '${typo}'; did you mean '${meant}'\\?`));
      assert.match(r.stderr, new RegExp(`\`${cli.name} --help\` lists`));
      assert.ok(r.stderr.split('\n').length <= 3, `no help text reprinted:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /usage:/);
    });

    if (cli.command) {
      const [wrong, meant] = cli.command;
      test(`a misspelt command ('${wrong}'): the nearest command, no help text, exit 2`, async () => {
        const r = await runCli(cli.script, [wrong]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`unknown command '${wrong}'; did you mean '${meant}'\\?`));
        assert.doesNotMatch(r.stderr, /usage:/);
      });
    }
  });
}
