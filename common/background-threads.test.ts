import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BACKGROUND_NICE } from './background-threads.js';

const MODULE = resolve(import.meta.dirname, 'background-threads.ts');

/** Nice value of every thread of `pid`, as procps' ps reads them. */
async function threadNice(pid: number): Promise<Map<number, number>> {
  const { stdout } = await promisify(execFile)('ps', ['-L', '-o', 'lwp=,ni=', '-p', String(pid)]);
  const out = new Map<number, number>();
  for (const line of stdout.trim().split('\n')) {
    const [tid, ni] = line.trim().split(/\s+/).map(Number);
    if (tid !== undefined && ni !== undefined) out.set(tid, ni);
  }
  return out;
}

test('every thread but the main one runs at nice 19, including threads started later', async () => {
  // The child lowers its threads, then starts a worker thread and waits for a
  // rescan; it prints how many it lowered and waits to be killed.
  const code = `
    import { lowerBackgroundThreads } from ${JSON.stringify(MODULE)};
    import { Worker } from 'node:worker_threads';
    const t = lowerBackgroundThreads({ warn: (o, m) => console.error(m, o) }, 50);
    const before = t.lowered;
    new Worker('setInterval(() => {}, 1000)', { eval: true });
    await new Promise((r) => setTimeout(r, 300));
    console.log('ready', before, t.lowered);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    const [word, before, after] = String(first.value).split(' ');
    assert.equal(word, 'ready');
    const pid = child.pid ?? 0;
    const nice = await threadNice(pid);
    assert.equal(nice.get(pid), 0, 'the main thread keeps its priority');
    const others = [...nice].filter(([tid]) => tid !== pid);
    assert.ok(others.length >= 4, `V8 and libuv threads exist (${others.length})`);
    for (const [tid, ni] of others) assert.equal(ni, BACKGROUND_NICE, `thread ${tid} at nice ${ni}`);
    assert.ok(Number(after) > Number(before), `the rescan found the new threads (${before} -> ${after})`);
    assert.equal(Number(after), others.length);
  } finally {
    child.kill('SIGKILL');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
});
