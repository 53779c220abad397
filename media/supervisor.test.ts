import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FakeClock } from '../common/clock.js';
import { waitFor } from '../test-support/wait-for.js';
import { mediaConfigSchema } from './config.js';
import { type MediaHealth, MediaSupervisor } from './supervisor.js';

/** Fake workers (plain JS, no GStreamer) to drive the supervisor's edges. */
const dir = mkdtempSync(path.join(tmpdir(), 'media-sup-'));
const fake = (name: string, body: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, body);
  return p;
};
const startMessage = (runId: number) => ({
  type: 'start' as const,
  runId,
  config: mediaConfigSchema.parse({}),
  encoder: 'x264enc' as const,
  segmentLocation: `/dev/shm/none/r${runId}-%05d.ts`,
  maskImage: '/dev/shm/none/mask.png',
});

describe('MediaSupervisor', { timeout: 30_000 }, () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('drops invalid messages, reports them, and restarts a crashing worker with backoff', async () => {
    const worker = fake(
      'garbage.mjs',
      `process.once('message', (m) => {
        process.send({ type: 'frame', width: 1e9, height: 1, stride: 1, timestampMs: 0, data: new Uint8Array(1) });
        process.send({ type: 'pipeline-up', runId: m.runId, extra: 'x' });
        process.send({ type: 'segment-opened', runId: m.runId, path: '/dev/shm/none/r1-00000.ts', startMs: 1 }, () => process.exit(1));
      });`,
    );
    const sup = new MediaSupervisor({
      startMessage,
      workerPath: worker,
      backoff: { minMs: 100, maxMs: 400 },
    });
    const health: MediaHealth[] = [];
    const messages: string[] = [];
    sup.on('health', (h) => health.push(h));
    sup.on('message', (m) => messages.push(m.type));
    try {
      sup.start();
      await waitFor(
        () => health.filter((h) => h.type === 'worker-started').length >= 3,
        'three starts',
        10_000,
      );
    } finally {
      await sup.stop();
    }
    assert.equal(health.filter((h) => h.type === 'invalid-message').length >= 6, true);
    assert.ok(messages.every((t) => t === 'segment-opened'));
    const delays = health.flatMap((h) => (h.type === 'restart-scheduled' ? [h.delayMs] : []));
    assert.ok(delays.length >= 2 && delays.every((d) => d >= 100 && d <= 400));
  });

  it('stops retrying after a configuration error (exit 78)', async () => {
    const worker = fake(
      'config.mjs',
      `process.once('message', (m) => {
        process.send({ type: 'error', kind: 'config', element: 'src', message: 'caps not negotiated', fatal: true }, () => process.exit(78));
      });`,
    );
    const clock = new FakeClock();
    const sup = new MediaSupervisor({
      startMessage,
      workerPath: worker,
      backoff: { minMs: 50, maxMs: 100 },
      clock,
    });
    const health: MediaHealth[] = [];
    sup.on('health', (h) => health.push(h));
    try {
      sup.start();
      await waitFor(() => health.some((h) => h.type === 'worker-exit'), 'exit', 10_000);
      // The exit was handled in one go: a restart would be a timer on the clock now.
      assert.equal(clock.pendingTimers(), 0, 'no restart timer');
      clock.advance(1000); // past any backoff
    } finally {
      await sup.stop();
    }
    assert.equal(health.filter((h) => h.type === 'worker-started').length, 1);
    assert.ok(health.some((h) => h.type === 'config-error' && /caps not negotiated/.test(h.message)));
    assert.ok(!health.some((h) => h.type === 'restart-scheduled'));
  });

  it('stop() kills a worker that ignores the stop request', async () => {
    const worker = fake(
      'stubborn.mjs',
      `process.on('message', () => {}); process.on('disconnect', () => {}); setInterval(() => {}, 1000);`,
    );
    const sup = new MediaSupervisor({ startMessage, workerPath: worker, stopTimeoutMs: 300 });
    const health: MediaHealth[] = [];
    sup.on('health', (h) => health.push(h));
    sup.start();
    await waitFor(() => sup.pid !== undefined, 'spawn', 5000);
    const t0 = Date.now();
    await sup.stop();
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(health.some((h) => h.type === 'worker-exit' && h.signal === 'SIGKILL'));
  });
});
