import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { CounterStore, CounterStoreError } from './counter-store.js';

async function take(store: CounterStore): Promise<number> {
  return store.next();
}

describe('CounterStore', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'proto-counter-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('starts at 1 and reserves a block before handing anything out', async () => {
    const path = join(dir, 'fresh', 'counter');
    const store = await CounterStore.open(path, { reserve: 100 });
    assert.equal(await readFile(path, 'utf8'), '100\n');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual([store.next(), store.next(), store.next()], [1, 2, 3]);
    await store.flush();
  });

  test('strictly increasing across clean reopens', async () => {
    const path = join(dir, 'clean');
    const seen: number[] = [];
    for (let round = 0; round < 4; round++) {
      const store = await CounterStore.open(path, { reserve: 8 });
      for (let i = 0; i < 5 + round * 7; i++) seen.push(await take(store));
      await store.flush();
    }
    for (let i = 1; i < seen.length; i++) assert.ok((seen[i] ?? 0) > (seen[i - 1] ?? 0), `${seen}`);
  });

  test('skipTo jumps ahead durably and never goes back', async () => {
    const path = join(dir, 'skip');
    const store = await CounterStore.open(path, { reserve: 10 });
    assert.equal(store.next(), 1);
    store.skipTo(500);
    assert.ok(Number(await readFile(path, 'utf8')) >= 500, 'the mark covers the jump before it is used');
    assert.equal(store.next(), 500);
    store.skipTo(3); // behind: no effect
    assert.equal(store.next(), 501);
    assert.throws(() => store.skipTo(0), TypeError);
    assert.throws(() => store.skipTo(Number.MAX_SAFE_INTEGER), RangeError, 'a huge jump is refused');
    assert.throws(() => store.skipTo(502 + 1001, 1000), RangeError);
    const reopened = await CounterStore.open(path, { reserve: 10 }); // as after kill -9
    assert.ok(reopened.next() > 501);
  });

  test('next never passes the durable mark: the next block is on disk before its first number', async () => {
    const path = join(dir, 'block');
    const store = await CounterStore.open(path, { reserve: 4 });
    assert.deepEqual([store.next(), store.next(), store.next(), store.next()], [1, 2, 3, 4]);
    assert.equal(await readFile(path, 'utf8'), '4\n');
    assert.equal(store.next(), 5);
    assert.equal(store.reservedUpTo, 8);
    assert.equal(await readFile(path, 'utf8'), '8\n', 'written synchronously before 5 was handed out');
  });

  test('a failed reservation write is a typed error and hands out nothing', async () => {
    const sub = join(dir, 'readonly');
    const path = join(sub, 'counter');
    const store = await CounterStore.open(path, { reserve: 2 });
    assert.deepEqual([store.next(), store.next()], [1, 2]);
    const { chmod } = await import('node:fs/promises');
    await chmod(sub, 0o500);
    try {
      if (process.getuid?.() === 0) {
        // root ignores directory permissions: make the write fail by replacing the directory path with a file
        await rm(sub, { recursive: true });
        await writeFile(sub, 'not a directory');
      }
      assert.throws(
        () => store.next(),
        (err: unknown) => err instanceof CounterStoreError && err.problem === 'persist-failed',
      );
    } finally {
      await rm(sub, { recursive: true, force: true });
    }
  });

  test('never repeats when opened again without a clean close', async () => {
    const path = join(dir, 'unclean');
    const first = await CounterStore.open(path, { reserve: 10 });
    const a = [first.next(), first.next(), first.next()];
    // No flush, no close: as if the process died here.
    const second = await CounterStore.open(path, { reserve: 10 });
    const b = second.next();
    assert.ok(b > Math.max(...a), `${b} after ${a}`);
    await first.flush();
    await second.flush();
  });

  test('never repeats after kill -9 of a process busy handing out counters', async () => {
    const path = join(dir, 'killed');
    const moduleUrl = new URL('./counter-store.ts', import.meta.url).href;
    const script = `
      const { CounterStore } = await import(${JSON.stringify(moduleUrl)});
      const store = await CounterStore.open(${JSON.stringify(path)}, { reserve: 16 });
      for (;;) {
        const n = store.next();
        process.stdout.write(n + '\\n');
        await new Promise((r) => setImmediate(r));
      }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const closed = new Promise((resolve) => child.on('close', resolve));
    const printed: number[] = [];
    for await (const line of createInterface({ input: child.stdout })) {
      printed.push(Number(line));
      if (printed.length === 200) child.kill('SIGKILL');
    }
    assert.equal(await closed, null);
    const max = Math.max(...printed);
    assert.ok(max >= 200);
    const reopened = await CounterStore.open(path, { reserve: 16 });
    assert.ok(reopened.next() > max);
    await reopened.flush();
  });

  test('refuses a corrupt file instead of starting over', async () => {
    const path = join(dir, 'corrupt');
    for (const content of [
      '',
      'abc\n',
      '-5\n',
      '1e3\n',
      '99999999999999999999\n',
      '01\n',
      `${'7'.repeat(10_000)}\n`,
    ]) {
      await writeFile(path, content);
      await assert.rejects(
        CounterStore.open(path),
        (err: unknown) => err instanceof CounterStoreError && err.problem === 'corrupt',
        JSON.stringify(content),
      );
    }
  });

  test('refuses a bad reserve option', async () => {
    for (const reserve of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(CounterStore.open(join(dir, 'x'), { reserve }), /"reserve"/);
    }
  });
});
