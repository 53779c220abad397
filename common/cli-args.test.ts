import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { CliUsageError, nearest, PRODUCT_VERSION, parseCli, unknownWord, wantsVersion } from './cli-args.js';

const OPTIONS = {
  broker: { type: 'string' },
  'state-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

test('the product version is the one in package.json', () => {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  assert.equal(PRODUCT_VERSION, pkg.version);
});

test('a misspelt option is refused in one line that names the nearest option, not the whole help', () => {
  assert.throws(
    () => parseCli('doorbell-hub', ['--brokr', 'mqtt://x'], OPTIONS),
    (err: unknown) => {
      assert.ok(err instanceof CliUsageError);
      assert.equal(err.message, "unknown option '--brokr'; did you mean '--broker'?");
      const line = err.line();
      assert.match(line, /^doorbell-hub: unknown option '--brokr'; did you mean '--broker'\?\n/);
      assert.equal(line.split('\n').length, 3, 'two lines and the final newline');
      return true;
    },
  );
});

test('an option nothing resembles is refused without a suggestion', () => {
  assert.throws(
    () => parseCli('doorbell', ['--zzzzzzzz'], OPTIONS),
    (err: unknown) => err instanceof CliUsageError && err.message === "unknown option '--zzzzzzzz'",
  );
});

test('a string option without its value is a usage error', () => {
  assert.throws(() => parseCli('doorbell', ['--broker'], OPTIONS), CliUsageError);
});

test('options and positionals parse as node:util parseArgs does', () => {
  const { values, positionals } = parseCli(
    'doorbell-hub',
    ['ring', 'front', '--json', '--state-dir', '/x'],
    OPTIONS,
  );
  assert.deepEqual(positionals, ['ring', 'front']);
  assert.equal(values.json, true);
  assert.equal(values['state-dir'], '/x');
});

test('nearest: prefixes and small typos find the word; unrelated words find nothing', () => {
  const known = ['broker', 'state-dir', 'recipient', 'timeout-ms', 'hub-role'];
  assert.equal(nearest('recip', known), 'recipient');
  assert.equal(nearest('timout-ms', known), 'timeout-ms');
  assert.equal(nearest('hubrole', known), 'hub-role');
  assert.equal(nearest('x', known), undefined);
  assert.equal(nearest('completely-else', known), undefined);
  assert.equal(
    unknownWord('doorbell-hub', 'command', 'rign', ['ring', 'keys']).message,
    "unknown command 'rign'; did you mean 'ring'?",
  );
});

test('nearest never suggests a word more than three edits away, whatever the input', () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 20 }),
      fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 8 }),
      (word, known) => {
        const near = nearest(word, known);
        if (near === undefined) return;
        assert.ok(known.includes(near));
      },
    ),
  );
});

test('--version is found anywhere before --, and not after it', () => {
  assert.equal(wantsVersion(['ring', '--version']), true);
  assert.equal(wantsVersion(['-V']), true);
  assert.equal(wantsVersion(['--', '--version']), false);
  assert.equal(wantsVersion(['ring']), false);
});
