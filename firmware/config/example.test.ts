import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { REPO } from '../../test-support/doc-commands.js';
import { runCli } from '../../test-support/run-cli.js';
import { ConfigError, loadConfigFile, parseConfig, parseConfigText } from './load.js';

const EXAMPLE = join(REPO, 'doorbell.example.json');

test('doorbell.example.json, comments and all, is a valid config with the camera recording', async () => {
  const text = await readFile(EXAMPLE, 'utf8');
  assert.match(text, /^\s*\/\/ /m, 'it is annotated');
  const config = await loadConfigFile(EXAMPLE);
  assert.equal(config.deviceId, 'front-door');
  assert.equal(config.hal.backend, 'linux');
  assert.equal(config.media.enabled, true);
  assert.deepEqual(config.media.camera.source, { kind: 'libcamera' });
});

test('media records when the config names a camera, not otherwise, and "enabled" always wins', () => {
  const media = (m: unknown) => parseConfig(m === undefined ? {} : { media: m }, 'test').media.enabled;
  assert.equal(media(undefined), false, 'no media section: no camera, nothing recorded');
  assert.equal(media({}), false);
  assert.equal(media({ recordMotion: false }), false);
  assert.equal(media({ camera: { width: 640, height: 480 } }), false, 'sizes alone do not name a camera');
  assert.equal(media({ camera: { source: { kind: 'v4l2' } } }), true);
  assert.equal(media({ camera: { source: { kind: 'test' } }, enabled: false }), false);
  assert.equal(media({ enabled: true }), true);
});

test("the README's minimal config records nothing, and the README says so and points to the example", async () => {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const minimal = /A minimal `doorbell.json`[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(minimal, 'the README has a minimal config');
  assert.equal(parseConfig(JSON.parse(minimal), 'README').media.enabled, false);
  assert.match(readme, /records nothing/);
  assert.match(readme, /doorbell\.example\.json/);
});

test('`doorbell --help` points to the annotated example', async () => {
  const r = await runCli('firmware/cli.ts', ['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /doorbell\.example\.json/);
});

test('a config with a syntax error is refused with the line and column of each mistake', () => {
  assert.throws(
    () => parseConfigText('{\n  // fine\n  "deviceId": "x",\n  "stateDir" "/tmp"\n}', 'f.json'),
    (err: ConfigError) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /not valid JSON: ColonExpected at line 4, column 14/);
      return true;
    },
  );
});

test('property: any text is either a JSON value (comments allowed) or a ConfigError, never another exception', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.json().map((j) => `// c\n${j} /* end */`),
      ),
      (text) => {
        try {
          parseConfigText(text, 'fuzz');
        } catch (err) {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(err.problems.length >= 1 && err.problems.length <= 10);
        }
      },
    ),
    { numRuns: 2000 },
  );
});
