import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { waitFor } from '../test-support/wait-for.js';
import { mediaConfigSchema } from './config.js';
import {
  type ClipFailed,
  type ClipFinished,
  MediaConfigError,
  type MediaHealth,
  MediaService,
} from './service.js';
import { ffprobeDuration, PlainDirSink } from './test-helpers.js';

const base = {
  width: 320,
  height: 240,
  fps: 15,
  bitrateKbps: 300,
  segmentS: 1,
  prerollS: 1,
  postrollS: 1,
};

function nextClip(service: MediaService): Promise<ClipFinished | ClipFailed> {
  return new Promise((resolve) => {
    const done = (c: ClipFinished | ClipFailed) => {
      service.off('clip-finished', done);
      service.off('clip-failed', done);
      resolve(c);
    };
    service.on('clip-finished', done);
    service.on('clip-failed', done);
  });
}

describe('media faults', { timeout: 90_000 }, () => {
  const dirs: string[] = [];
  const services: MediaService[] = [];
  const tmp = (prefix: string, root = tmpdir()) => {
    const d = mkdtempSync(path.join(root, prefix));
    dirs.push(d);
    return d;
  };
  after(async () => {
    await Promise.all(services.map((s) => s.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('kill -9 of the worker while recording: restarted with backoff, earlier clips intact, later clips fine', async (t) => {
    const clipDir = tmp('media-clips-');
    const config = mediaConfigSchema.parse({ ...base, ringDir: tmp('media-ring-', '/dev/shm') });
    const sink = new PlainDirSink(clipDir);
    const service = new MediaService({ config, sink, backoff: { minMs: 200, maxMs: 1000 } });
    services.push(service);
    const health: MediaHealth[] = [];
    service.on('health', (h) => health.push(h));
    await service.start();
    await waitFor(
      () => health.some((h) => h.type === 'preroll-ready' && h.runId === 1),
      'a full pre-roll',
      10_000,
    );

    const first = nextClip(service);
    service.trigger('press');
    const a = await first;
    assert.ok('sha256' in a, `first clip failed: ${'error' in a ? a.error : ''}`);
    const aPath = sink.written[0]?.path as string;
    const aDuration = await ffprobeDuration(aPath);

    // A second clip is recording when the worker is killed.
    const second = nextClip(service);
    const triggeredAt = Date.now();
    service.trigger('press');
    // Recording: a frame of the post-roll has come from the worker.
    await new Promise<void>((resolve) => {
      const onFrame = (f: { timestampMs: number }): void => {
        if (f.timestampMs <= triggeredAt) return;
        service.off('motion-frame', onFrame);
        resolve();
      };
      service.on('motion-frame', onFrame);
    });
    const pid = service.workerPid as number;
    assert.ok(pid > 0);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    process.kill(pid, 'SIGKILL'); // our own child, by pid
    // The control plane keeps serving while the worker is down: a callback queued now runs
    // before the new pipeline is up.
    const served = new Promise<boolean>((resolve) =>
      setImmediate(() => resolve(!health.some((h) => h.type === 'pipeline-up' && h.runId === 2))),
    );
    await waitFor(() => health.some((h) => h.type === 'worker-exit' && h.runId === 1), 'the exit', 10_000);
    assert.equal(service.isUp, false);
    await waitFor(() => health.some((h) => h.type === 'pipeline-up' && h.runId === 2), 'restart', 10_000);
    lag.disable();
    assert.equal(await served, true, 'the loop ran before the restart finished');
    const exit = health.find((h) => h.type === 'worker-exit' && h.runId === 1);
    assert.deepEqual(exit, { type: 'worker-exit', runId: 1, code: null, signal: 'SIGKILL' });
    const restart = health.find((h) => h.type === 'restart-scheduled');
    assert.ok(restart !== undefined && restart.type === 'restart-scheduled' && restart.delayMs >= 200);
    assert.ok(health.some((h) => h.type === 'pipeline-down' && h.runId === 1));
    assert.notEqual(service.workerPid, pid);

    // The clip that was recording is cut from what the ring holds (the killed run's segments).
    const b = await second;
    t.diagnostic(`clip recording at the kill: ${JSON.stringify(b)}`);
    // Reported, not asserted: speed belongs in the benchmarks.
    t.diagnostic(`event loop delay max during kill+restart: ${(lag.max / 1e6).toFixed(1)} ms`);
    // It loses what the killed worker had not flushed (about a GOP), so it is marked truncated.
    if ('sha256' in b) {
      assert.equal(b.truncated, true);
      const bPath = sink.written.find((w) => w.result.id === b.id)?.path as string;
      assert.ok((await ffprobeDuration(bPath)) > 0.5);
    } else {
      assert.match(b.error, /no video/);
    }
    // The clip finished before the kill is untouched.
    assert.equal(await ffprobeDuration(aPath), aDuration);

    // And the restarted pipeline records normally, once its ring holds a pre-roll again.
    await waitFor(
      () => health.some((h) => h.type === 'preroll-ready' && h.runId === 2),
      'a new pre-roll',
      10_000,
    );
    const third = nextClip(service);
    service.trigger('press');
    const c = await third;
    assert.ok('sha256' in c, `clip after restart failed: ${'error' in c ? c.error : ''}`);
    const cPath = sink.written.find((w) => w.result.id === c.id)?.path as string;
    assert.ok(Math.abs((await ffprobeDuration(cPath)) - 2) <= 1);
    await service.stop();
  });

  it('a missing source file is reported and retried with backoff, never in a tight loop', async (t) => {
    const config = mediaConfigSchema.parse({
      ...base,
      source: { kind: 'file', path: '/nonexistent/doorbell-test.ts' },
      ringDir: tmp('media-ring-', '/dev/shm'),
    });
    const service = new MediaService({
      config,
      sink: new PlainDirSink(tmp('media-clips-')),
      backoff: { minMs: 300, maxMs: 1200 },
    });
    services.push(service);
    const health: Array<MediaHealth & { atMs: number }> = [];
    service.on('health', (h) => health.push({ ...h, atMs: performance.now() }));
    await service.start(); // resolves: a camera error is not a configuration error
    await waitFor(
      () => health.filter((h) => h.type === 'worker-started').length >= 4,
      'three restarts',
      20_000,
    );
    await service.stop();
    const errors = health.filter((h) => h.type === 'camera-error');
    const delays = health.flatMap((h) => (h.type === 'restart-scheduled' ? [h.delayMs] : []));
    t.diagnostic(`delays ${delays.join(', ')} ms; first error: ${JSON.stringify(errors[0])}`);
    assert.ok(errors.length >= 3, 'each start reports the camera error');
    assert.match(JSON.stringify(errors[0]), /video file \/nonexistent\/doorbell-test\.ts not found/);
    assert.ok(delays.length >= 3 && delays.every((d) => d >= 300 && d <= 1200), `backoff delays ${delays}`);
    // Never a tight loop: each start comes no sooner than the delay its restart announced.
    health.forEach((h, i) => {
      if (h.type !== 'restart-scheduled') return;
      const next = health.slice(i + 1).find((n) => n.type === 'worker-started');
      if (next)
        assert.ok(
          next.atMs - h.atMs >= h.delayMs - 1,
          `a start ${next.atMs - h.atMs} ms after a ${h.delayMs} ms delay`,
        );
    });
    assert.equal(service.isUp, false);
  });

  it('a configuration GStreamer cannot run is refused at start with a clear message', async () => {
    const service = new MediaService({
      config: mediaConfigSchema.parse({ ...base, ringDir: tmp('media-ring-', '/dev/shm') }),
      sink: new PlainDirSink(tmp('media-clips-')),
      elementCheck: async (e) => e !== 'x264enc' && e !== 'openh264enc' && e !== 'v4l2h264enc',
    });
    await assert.rejects(service.start(), (err: unknown) => {
      assert.ok(err instanceof MediaConfigError);
      assert.match(err.message, /no H\.264 encoder/);
      return true;
    });
    assert.equal(service.workerPid, undefined);
  });
});
