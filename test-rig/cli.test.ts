import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningBroker, startMosquitto } from '../test-support/mosquitto.js';
import { type CliResult, collect, spawnCli } from '../test-support/run-cli.js';
import type { SuiteReport } from './suites/report.js';

// The CLI starts socat and the sim daemon itself and stops them on exit; it
// names each pid on stderr, so that `after` can still kill any it left behind.
const pids = new Set<number>();
let broker: RunningBroker | undefined;
let dir = '';

async function rig(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  const child = spawnCli('test-rig/cli.ts', args);
  child.stdin?.end();
  child.stderr?.on('data', (d: Buffer) => {
    for (const m of d.toString().matchAll(/started \w+ pid (\d+)/g)) pids.add(Number(m[1]));
  });
  if (child.pid !== undefined) pids.add(child.pid);
  return collect(child, timeoutMs);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-rig-cli-'));
  broker = await startMosquitto();
});

after(async () => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone: the CLI cleaned up after itself.
    }
  }
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('doorbell-rig usage errors exit 2 and name the bad flag or value', () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--emulate', '--suite', 'huge'], /--suite must be smoke or full, got 'huge'/],
    [['run'], /exactly one of --port PATH and --emulate/],
    [['press', '--port', '/dev/null', '--ms', '0'], /--ms must be an integer in 1\.\.60000, got '0'/],
    [['power', '--port', '/dev/null', 'sideways'], /'on' or 'off', got 'sideways'/],
    [['emulate', '--corrupt-rate', '3'], /--corrupt-rate must be a fraction in 0\.\.1, got '3'/],
    [['list', '--vid', 'xyz'], /--vid must be 4 hex digits/],
    [['run', '--emulate', '--bogus'], /bogus/],
    [['dance'], /unknown command 'dance'/],
  ];
  for (const [args, message] of cases) {
    test(args.join(' '), async () => {
      const r = await rig(args, 20_000);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    });
  }
});

test('run --emulate --suite full: every check passes or is skipped for the video pipeline', async () => {
  const json = join(dir, 'full.json');
  const r = await rig([
    'run',
    '--emulate',
    '--broker',
    broker?.url ?? '',
    '--suite',
    'full',
    '--presses',
    '4',
    '--json',
    json,
  ]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(await readFile(json, 'utf8')) as SuiteReport;
  assert.equal(report.ok, true);
  assert.equal(report.failed, 0);
  assert.deepEqual(
    report.checks.filter((c) => c.status === 'pass').map((c) => c.name),
    [
      'handshake',
      'press rings the chime',
      'press gives a verified event at the hub',
      'press-to-chime latency',
      'bounce storm rings once',
      'a 5.5 s hold requests pairing',
      'power cut, then power on: back online',
    ],
  );
  for (const c of report.checks.filter((c) => c.status === 'skip'))
    assert.equal(c.detail, 'needs the video pipeline');
  const latency = report.checks.find((c) => c.name === 'press-to-chime latency')?.data as {
    samplesMs: number[];
    p50Ms: number;
    p99Ms: number;
  };
  assert.equal(latency.samplesMs.length, 4);
  assert.ok(latency.p50Ms > 0 && latency.p50Ms <= latency.p99Ms && latency.p99Ms < 2000);
  assert.match(r.stdout, /OK: 7 passed, 0 failed, 2 skipped/);
});

test('run --emulate with every byte dropped: the handshake fails clearly, exit 1, nothing crashes', async () => {
  const json = join(dir, 'dropped.json');
  const r = await rig([
    'run',
    '--emulate',
    '--broker',
    broker?.url ?? '',
    '--drop-rate',
    '1',
    '--json',
    json,
  ]);
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(await readFile(json, 'utf8')) as SuiteReport;
  assert.equal(report.ok, false);
  assert.match(report.checks[0]?.detail ?? '', /no reply to HELLO \(request #1\) within \d+ ms/);
  assert.match(r.stdout, /FAIL {2}handshake/);
});

test('run --emulate with corrupted and dropped bytes completes with a report either way', async () => {
  const json = join(dir, 'noisy.json');
  const r = await rig([
    'run',
    '--emulate',
    '--broker',
    broker?.url ?? '',
    '--suite',
    'smoke',
    '--corrupt-rate',
    '0.02',
    '--drop-rate',
    '0.01',
    '--seed',
    '7',
    '--json',
    json,
  ]);
  assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
  const report = JSON.parse(await readFile(json, 'utf8')) as SuiteReport;
  assert.equal(report.ok, r.code === 0);
  for (const c of report.checks.filter((c) => c.status === 'fail')) assert.ok(c.detail.length > 10, c.name);
  assert.match(r.stdout, /(OK|FAILED): \d+ passed/);
});
