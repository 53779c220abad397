import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { listenNotifySocket as listen } from '../test-support/notify-socket.js';
import { waitFor } from '../test-support/wait-for.js';
import { FakeClock } from './clock.js';
import { createSdNotifier, watchdogInterval } from './sd-notify.js';

describe('sd-notify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-notify-'));
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('is a no-op without NOTIFY_SOCKET', async () => {
    const n = createSdNotifier({ env: {}, bin: '/nonexistent' });
    assert.equal(n.enabled, false);
    assert.equal(n.watchdogIntervalMs, undefined);
    await n.ready();
    await n.watchdog();
    n.startWatchdog()();
  });

  for (const kind of ['python', 'socat'] as const) {
    it(`delivers READY=1, WATCHDOG=1, STATUS and STOPPING=1 to a real datagram socket (${kind})`, async () => {
      const path = join(dir, `notify-${kind}.sock`);
      const listener = await listen(path, kind);
      children.push(listener.child);
      const errors: Error[] = [];
      const n = createSdNotifier({
        env: { ...process.env, NOTIFY_SOCKET: path, WATCHDOG_USEC: '200000' },
        onError: (e) => errors.push(e),
        // socat keeps passed descriptors open, so the barrier would time out.
        noBlock: kind === 'socat',
      });
      assert.equal(n.enabled, true);
      assert.equal(n.watchdogIntervalMs, 100);
      await n.ready('online');
      await n.watchdog();
      await n.stopping();
      await waitFor(() => listener.messages().includes('STOPPING=1'), 'STOPPING=1 received', 2000);
      const got = listener.messages();
      assert.deepEqual(errors, []);
      assert.match(got, /READY=1/);
      assert.match(got, /STATUS=online/);
      assert.match(got, /WATCHDOG=1/);
      assert.match(got, /STOPPING=1/);
    });
  }

  it('startWatchdog sends WATCHDOG=1 every half WATCHDOG_USEC while healthy, none while not', async () => {
    const path = join(dir, 'watchdog.sock');
    const listener = await listen(path, 'python');
    children.push(listener.child);
    const pings = () => listener.messages().match(/WATCHDOG=1/g)?.length ?? 0;
    let healthy = true;
    const clock = new FakeClock();
    const n = createSdNotifier({
      env: { ...process.env, NOTIFY_SOCKET: path, WATCHDOG_USEC: '100000' },
      clock,
    });
    const stop = n.startWatchdog(() => healthy);
    clock.advance(49);
    for (let i = 1; i <= 3; i++) {
      clock.advance(i === 1 ? 1 : 50);
      await waitFor(() => pings() === i, `ping ${i}`, 5000);
    }
    healthy = false;
    clock.advance(150); // three intervals while unhealthy
    healthy = true;
    clock.advance(50);
    // A send started while unhealthy would have started before this one: the count would be 5.
    await waitFor(() => pings() >= 4, 'the ping after recovery', 5000);
    assert.equal(pings(), 4, 'no pings while unhealthy');
    stop();
    assert.equal(clock.pendingTimers(), 0, 'stopped: no timer left');
  });

  it('reads the watchdog interval only for this process', () => {
    assert.equal(watchdogInterval({ WATCHDOG_USEC: '30000000' }), 15_000);
    assert.equal(watchdogInterval({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) }), 15_000);
    assert.equal(watchdogInterval({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }), undefined);
    assert.equal(watchdogInterval({ WATCHDOG_USEC: 'x' }), undefined);
    assert.equal(watchdogInterval({}), undefined);
  });
});
