import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { FakeClock, msToNs, nsToMs, systemClock } from './clock.js';

test('FakeClock fires due timers in due order with nowNs at the due time', () => {
  const clock = new FakeClock(0n);
  const fired: Array<[string, bigint]> = [];
  clock.setTimeout(() => fired.push(['b', clock.nowNs()]), 20);
  clock.setTimeout(() => fired.push(['a', clock.nowNs()]), 10);
  clock.setTimeout(() => fired.push(['c', clock.nowNs()]), 30);
  clock.advance(25);
  assert.deepEqual(fired, [
    ['a', msToNs(10)],
    ['b', msToNs(20)],
  ]);
  assert.equal(clock.nowNs(), msToNs(25));
  assert.equal(clock.pendingTimers(), 1);
});

test('FakeClock fires timers scheduled by timers inside the window, and equal times in creation order', () => {
  const clock = new FakeClock(0n);
  const order: string[] = [];
  clock.setTimeout(() => {
    order.push('first');
    clock.setTimeout(() => order.push('nested'), 5);
  }, 5);
  clock.setTimeout(() => order.push('second'), 5);
  clock.advance(10);
  assert.deepEqual(order, ['first', 'second', 'nested']);
});

test('FakeClock clearTimeout cancels, and is harmless twice', () => {
  const clock = new FakeClock();
  let fired = false;
  const h = clock.setTimeout(() => {
    fired = true;
  }, 1);
  clock.clearTimeout(h);
  clock.clearTimeout(h);
  clock.advance(5);
  assert.equal(fired, false);
  assert.equal(clock.pendingTimers(), 0);
});

test('ms/ns conversions round-trip, and systemClock is monotonic', async () => {
  assert.equal(msToNs(1.5), 1_500_000n);
  assert.equal(nsToMs(2_500_000n), 2.5);
  const a = systemClock.nowNs();
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 1));
  assert.ok(systemClock.nowNs() > a);
  const h = systemClock.setTimeout(() => assert.fail('cleared timer fired'), 1);
  systemClock.clearTimeout(h);
});

test('a background timer of the system clock does not keep the process alive; a plain one does', async () => {
  const module = JSON.stringify(new URL('./clock.ts', import.meta.url).pathname);
  const script = (background: boolean) =>
    `import { systemClock } from ${module};
     systemClock.setTimeout(() => console.log('fired'), ${background ? 60_000 : 50}, { background: ${background} });`;
  const run = (background: boolean) =>
    promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script(background)],
      {
        timeout: 20_000,
      },
    );
  assert.equal((await run(true)).stdout, '', 'exited without waiting a minute for the background timer');
  assert.equal((await run(false)).stdout, 'fired\n', 'waited for the plain timer');
});
