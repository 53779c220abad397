import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { type DocRun, docCommand, runDocCommand, withValues } from '../test-support/doc-commands.js';
import { listenNotifySocket } from '../test-support/notify-socket.js';
import { spawnCli } from '../test-support/run-cli.js';
import { waitFor } from '../test-support/wait-for.js';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * `doorbell-hub serve` as a service: a real Mosquitto, a real HTTP client,
 * and systemd's notification socket played by a real AF_UNIX datagram
 * socket (test-support/notify-socket.ts).
 */
let broker: RunningBroker;
let work: string;
const children: ChildProcess[] = [];
/** Documented commands started here: each is stopped with its whole process group. */
const runs: DocRun[] = [];

before(async () => {
  broker = await startMosquitto();
  work = await mkdtemp(join(tmpdir(), 'doorbell-serve-'));
});

after(async () => {
  for (const r of runs) await r.stop('SIGKILL').catch(() => undefined);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await broker?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('doorbell-hub serve', { timeout: 60_000 }, () => {
  test('ready to systemd once it listens, healthy with the broker and 503 without it, typed 404 and 413, and a clean stop on SIGTERM', async () => {
    const notifyPath = join(work, 'notify.sock');
    const notify = await listenNotifySocket(notifyPath, 'python');
    children.push(notify.child);
    const hub = runDocCommand(docCommand('docs/hub-serve.md', 'npm run doorbell-hub -- serve').text, {
      env: {
        DOORBELL_HUB_LISTEN: '127.0.0.1:0',
        DOORBELL_HUB_BROKER: broker.url,
        DOORBELL_HUB_STATE: join(work, 'hub'),
        NOTIFY_SOCKET: notifyPath,
        WATCHDOG_USEC: '1000000',
      },
    });
    runs.push(hub);
    const url = (await hub.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 30_000))[1] ?? '';
    const stderr = () => hub.stderr;
    await hub.waitFor(/first run: no owner account yet/, 10_000);
    await waitFor(() => notify.messages().includes('READY=1'), 'READY=1', 5000);
    await waitFor(() => notify.messages().includes('WATCHDOG=1'), 'a watchdog ping', 5000);

    const health = async () => {
      const r = await fetch(`${url}/healthz`);
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    await waitFor(async () => (await health()).status === 200, 'healthy', 10_000);
    const curl = runDocCommand(
      withValues(docCommand('docs/hub-serve.md', 'curl -s http://127.0.0.1:8580/healthz'), {
        'http://127.0.0.1:8580': url,
      }),
    );
    assert.equal(await curl.exited(10_000), 0, curl.stderr);
    const ok = JSON.parse(curl.stdout) as Record<string, unknown>;
    assert.equal(ok.broker, 'connected');
    assert.equal(ok.status, 'ok');

    const missing = await fetch(`${url}/nothing-here`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: string }).error, 'not-found');
    assert.equal(missing.headers.get('x-content-type-options'), 'nosniff');
    const closed = await fetch(`${url}/api/me`);
    assert.equal(closed.status, 401, 'nothing under /api/ without a login');
    const big = await fetch(`${url}/api/anything`, { method: 'POST', body: Buffer.alloc(100_000, 1) });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: string }).error, 'too-large');

    await broker.stop();
    await waitFor(async () => (await health()).status === 503, 'degraded without the broker', 10_000);
    assert.equal((await health()).body.broker, 'disconnected');

    await hub.stop('SIGTERM');
    await waitFor(() => notify.messages().includes('STOPPING=1'), 'STOPPING=1', 5000);
    assert.match(hub.stderr, /"msg":"stopping"/, stderr());
    broker = await startMosquitto();
  });

  test('a listen address that is taken is a clear error, exit 1', async () => {
    const first = spawnCli('hub/cli.ts', [
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--broker',
      broker.url,
      '--state-dir',
      join(work, 'hub-a'),
    ]);
    children.push(first);
    let url = '';
    for await (const line of createInterface({ input: first.stdout as NodeJS.ReadableStream })) {
      url = /listening on http:\/\/(127\.0\.0\.1:\d+)/.exec(line)?.[1] ?? '';
      if (url) break;
    }
    const second = runDocCommand(
      withValues(docCommand('docs/hub-serve.md', 'npm run doorbell-hub -- serve --listen 0.0.0.0:8580'), {
        '0.0.0.0:8580': url,
      }),
      { env: { DOORBELL_HUB_BROKER: broker.url, DOORBELL_HUB_STATE: join(work, 'hub-b') } },
    );
    runs.push(second);
    assert.notEqual(await second.exited(30_000), 0);
    assert.match(second.stderr, new RegExp(`cannot listen on ${url}: EADDRINUSE`));
    first.kill('SIGTERM');
    assert.equal((await once(first, 'exit'))[0], 0, 'SIGTERM stops the hub cleanly: exit 0');
  });

  test('systemd-analyze verify accepts the hub unit, rendered as docs/hub-serve.md says', async () => {
    const unit = join(work, 'doorbell-hub.service');
    const render = runDocCommand(
      withValues(docCommand('docs/hub-serve.md', 'sed -e'), { '> doorbell-hub.service': `> ${unit}` }),
    );
    assert.equal(await render.exited(10_000), 0, render.stderr);
    const text = await readFile(unit, 'utf8');
    assert.ok(text.includes(` ${ROOT}/dist/hub/cli.js serve\n`), text);
    assert.match(text, /^ExecStart=\/\S+\/node /m);
    assert.match(text, /^Type=notify$/m);
    assert.match(text, /^NotifyAccess=all$/m);
    assert.match(text, /^WatchdogSec=/m);
    assert.doesNotMatch(text, /@NODE@|@CLI@/);
    const r = await new Promise<{ code: number; stderr: string }>((res) =>
      execFile('systemd-analyze', ['verify', unit], (err, _stdout, stderr) =>
        res({ code: err ? 1 : 0, stderr }),
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /doorbell-hub\.service/, r.stderr);
  });
});
