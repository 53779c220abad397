import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BACKGROUND_NICE } from './background-threads.js';

const MODULE = resolve(import.meta.dirname, 'background-threads.ts');

/** Scheduling class (TS: SCHED_OTHER, IDL: SCHED_IDLE) and nice value of every thread of `pid`, as procps' ps reads them. */
async function threadPolicies(pid: number): Promise<Map<number, { cls: string; ni: string }>> {
  const { stdout } = await promisify(execFile)('ps', ['-L', '-o', 'lwp=,cls=,ni=', '-p', String(pid)]);
  const out = new Map<number, { cls: string; ni: string }>();
  for (const line of stdout.trim().split('\n')) {
    const [tid, cls, ni] = line.trim().split(/\s+/);
    if (tid !== undefined && cls !== undefined && ni !== undefined) out.set(Number(tid), { cls, ni });
  }
  return out;
}

test('every thread but the main one runs under SCHED_IDLE, including threads started later', async () => {
  // The child lowers its threads, then starts a worker thread and waits for a
  // rescan; it prints how many it lowered and waits to be killed.
  const code = `
    import { lowerBackgroundThreads } from ${JSON.stringify(MODULE)};
    import { Worker } from 'node:worker_threads';
    const t = lowerBackgroundThreads({ warn: (o, m) => console.error(m, o) }, 50);
    const before = t.lowered;
    const { once } = await import('node:events');
    const { readdirSync } = await import('node:fs');
    await once(new Worker('setInterval(() => {}, 1000)', { eval: true }), 'online');
    // Until a rescan has lowered every thread but the main one (the worker's among them).
    const end = Date.now() + 10_000;
    while (t.lowered < readdirSync('/proc/self/task').length - 1 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 10));
    await t.settled();
    // A process started now (as the media worker is) forks from the main thread.
    const { spawn } = await import('node:child_process');
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    console.log('ready', before, t.lowered, t.idle, sleeper.pid);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let sleeper = 0;
  try {
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    const [word, before, after, idle, sleeperPid] = String(first.value).split(' ');
    sleeper = Number(sleeperPid);
    assert.equal(word, 'ready');
    const pid = child.pid ?? 0;
    const threads = await threadPolicies(pid);
    assert.deepEqual(
      threads.get(pid),
      { cls: 'TS', ni: '0' },
      'the main thread keeps its policy and priority',
    );
    const others = [...threads].filter(([tid]) => tid !== pid);
    assert.ok(others.length >= 4, `V8 and libuv threads exist (${others.length})`);
    // ps shows no nice value for SCHED_IDLE threads.
    for (const [tid, p] of others) assert.deepEqual(p, { cls: 'IDL', ni: '-' }, `thread ${tid}`);
    assert.ok(Number(after) > Number(before), `the rescan found the new threads (${before} -> ${after})`);
    assert.equal(Number(after), others.length);
    assert.equal(Number(idle), others.length);
    const sleeperPolicy = (await threadPolicies(sleeper)).get(sleeper);
    assert.deepEqual(sleeperPolicy, { cls: 'TS', ni: '0' }, 'a process it starts keeps the normal policy');
  } finally {
    if (sleeper > 0) process.kill(sleeper, 'SIGKILL');
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
});

test('without chrt the threads still run at nice 19, and one line says why', async () => {
  const code = `
    import { lowerBackgroundThreads } from ${JSON.stringify(MODULE)};
    const t = lowerBackgroundThreads({ warn: (o, m) => console.log('warn', m) }, 60_000);
    await t.settled();
    console.log('ready', t.lowered, t.idle);
    setInterval(() => {}, 1000);
  `;
  // A PATH without util-linux: node itself is started by its full path.
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PATH: '/nonexistent' },
  });
  try {
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const warn = String((await lines.next()).value);
    assert.equal(warn, 'warn chrt not found: background threads run at nice 19 only');
    const [word, lowered, idle] = String((await lines.next()).value).split(' ');
    assert.equal(word, 'ready');
    assert.equal(Number(idle), 0);
    const pid = child.pid ?? 0;
    const threads = await threadPolicies(pid);
    assert.deepEqual(threads.get(pid), { cls: 'TS', ni: '0' });
    const others = [...threads].filter(([tid]) => tid !== pid);
    assert.ok(others.length >= 4 && Number(lowered) >= 4, `threads lowered: ${lowered}`);
    for (const [tid, p] of others) {
      assert.deepEqual(p, { cls: 'TS', ni: String(BACKGROUND_NICE) }, `thread ${tid}`);
    }
  } finally {
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
});
