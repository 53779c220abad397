import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { LogFormatError, parseLogFormat, resolveLogFormat } from './logger.js';

const run = promisify(execFile);
const LOGGER = resolve(import.meta.dirname, 'logger.ts');

/** Node code that logs one record the way the executables do. */
const program = (format?: string) =>
  `import { createLogger } from ${JSON.stringify(LOGGER)};` +
  `createLogger({ name: 'doorbell'${format ? `, format: '${format}'` : ''} }).child({ module: 'chime' }).warn({ rang: 3 }, 'coil hot');`;

/** Runs it with stderr on a real pseudo-terminal (util-linux `script`), returning what the terminal showed. */
async function onTerminal(code: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const command = `${process.execPath} --import tsx --input-type=module -e ${shellQuote(code)}`;
  const { stdout } = await run('script', ['-qec', command, '/dev/null'], {
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
  return stdout.replace(/\r/g, '');
}

async function piped(code: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, ...env },
  });
  return stderr;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

test('on a terminal a log record is one readable line: time, level, name, message and fields, not JSON', async () => {
  const shown = await onTerminal(program(), { DOORBELL_LOG_FORMAT: '' });
  const line = shown.split('\n').find((l) => l.includes('coil hot')) ?? '';
  assert.doesNotMatch(line, /^\{/, shown);
  assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(doorbell\): coil hot .*"module":"chime".*"rang":3/);
});

test('piped (journald, files, scripts) a log record is one JSON object', async () => {
  const line = (await piped(program(), { DOORBELL_LOG_FORMAT: '' })).trim();
  const record = JSON.parse(line) as Record<string, unknown>;
  assert.equal(record.msg, 'coil hot');
  assert.equal(record.module, 'chime');
  assert.equal(record.level, 40);
});

test('--log-format json (and DOORBELL_LOG_FORMAT=json) give JSON on a terminal too; pretty gives lines when piped', async () => {
  for (const [code, env] of [
    [program('json'), {}],
    [program(), { DOORBELL_LOG_FORMAT: 'json' }],
  ] as const) {
    const line = (await onTerminal(code, env)).split('\n').find((l) => l.includes('coil hot')) ?? '';
    assert.equal((JSON.parse(line) as { msg: string }).msg, 'coil hot');
  }
  assert.match(await piped(program('pretty')), /WARN \(doorbell\): coil hot/);
});

test('a log format is pretty, json or auto; anything else is a clear error, from the flag or the environment', () => {
  assert.equal(parseLogFormat('json'), 'json');
  assert.equal(resolveLogFormat(undefined, {}, true), 'pretty');
  assert.equal(resolveLogFormat(undefined, {}, false), 'json');
  assert.equal(resolveLogFormat('pretty', { DOORBELL_LOG_FORMAT: 'json' }, false), 'pretty');
  assert.throws(
    () => resolveLogFormat(undefined, { DOORBELL_LOG_FORMAT: 'xml' }),
    /DOORBELL_LOG_FORMAT must be one of pretty, json, auto, got 'xml'/,
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (text) => {
      try {
        assert.ok(['pretty', 'json', 'auto'].includes(parseLogFormat(text)));
      } catch (err) {
        assert.ok(err instanceof LogFormatError);
        assert.ok(err.message.length < 120, 'the error quotes at most 40 characters');
      }
    }),
  );
});
