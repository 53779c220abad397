import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { waitFor } from '../test-support/wait-for.js';
import { mediaConfigSchema } from './config.js';
import type { GrayFrame } from './frame.js';
import { type ClipFinished, type MediaHealth, MediaService } from './service.js';
import { ffprobeDuration, PlainDirSink } from './test-helpers.js';

const base = { width: 320, height: 240, fps: 15, bitrateKbps: 300, segmentS: 1, prerollS: 1, postrollS: 1 };

describe('camera sources', { timeout: 60_000 }, () => {
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

  it('a video file (MPEG-TS) is looped: frames keep coming past its end and clips are cut', async () => {
    const file = path.join(tmp('media-src-'), 'two-seconds.ts');
    execFileSync(
      'gst-launch-1.0',
      [
        '-q',
        'videotestsrc',
        'pattern=ball',
        'num-buffers=30',
        '!',
        'video/x-raw,width=320,height=240,framerate=15/1',
        '!',
        'x264enc',
        'key-int-max=15',
        '!',
        'h264parse',
        '!',
        'mpegtsmux',
        '!',
        'filesink',
        `location=${file}`,
      ],
      { timeout: 20_000, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const clipDir = tmp('media-clips-');
    const sink = new PlainDirSink(clipDir);
    const service = new MediaService({
      config: mediaConfigSchema.parse({
        ...base,
        source: { kind: 'file', path: file },
        ringDir: tmp('media-ring-', '/dev/shm'),
      }),
      sink,
    });
    services.push(service);
    const frames: GrayFrame[] = [];
    service.on('motion-frame', (f) => frames.push(f));
    await service.start();
    assert.ok(service.isUp);
    await waitFor(() => frames.length > 0, 'first frame', 5000);
    const t0 = frames[0]?.timestampMs as number;
    // Twice the file's length: it looped.
    await waitFor(() => (frames[frames.length - 1]?.timestampMs ?? 0) - t0 > 4000, '4 s of frames', 10_000);
    const clip = new Promise<ClipFinished>((resolve, reject) => {
      service.once('clip-finished', resolve);
      service.once('clip-failed', (e) => reject(new Error(e.error)));
    });
    service.trigger('press');
    const c = await clip;
    const probed = await ffprobeDuration(sink.written[0]?.path as string);
    assert.ok(Math.abs(probed - 2) <= 1, `clip of ${probed} s`);
    assert.equal(c.truncated, false);
    assert.equal(service.restarts, 0, 'no restart: the loop is inside the pipeline');
  });

  it('a missing V4L2 device is a camera error, retried', async () => {
    const service = new MediaService({
      config: mediaConfigSchema.parse({
        ...base,
        source: { kind: 'v4l2', device: '/dev/video-doorbell-missing' },
        ringDir: tmp('media-ring-', '/dev/shm'),
      }),
      sink: new PlainDirSink(tmp('media-clips-')),
      backoff: { minMs: 300, maxMs: 600 },
    });
    services.push(service);
    const health: MediaHealth[] = [];
    service.on('health', (h) => health.push(h));
    await service.start();
    await waitFor(() => health.some((h) => h.type === 'restart-scheduled'), 'restart', 5000);
    await service.stop();
    const err = health.find((h) => h.type === 'camera-error');
    assert.ok(err !== undefined, JSON.stringify(health));
    assert.match(JSON.stringify(err), /V4L2 device \/dev\/video-doorbell-missing not found/);
  });

  it('libcamera with no camera attached: reported and retried, never a hang', async () => {
    const service = new MediaService({
      config: mediaConfigSchema.parse({
        ...base,
        source: { kind: 'libcamera' },
        ringDir: tmp('media-ring-', '/dev/shm'),
      }),
      sink: new PlainDirSink(tmp('media-clips-')),
      backoff: { minMs: 300, maxMs: 600 },
    });
    services.push(service);
    const health: MediaHealth[] = [];
    service.on('health', (h) => health.push(h));
    await service.start();
    await waitFor(() => health.some((h) => h.type === 'restart-scheduled'), 'restart', 12_000);
    await service.stop();
    assert.ok(
      health.some(
        (h) => h.type === 'camera-error' || h.type === 'pipeline-error' || h.type === 'pipeline-down',
      ),
      JSON.stringify(health),
    );
    assert.equal(
      health.some((h) => h.type === 'pipeline-up'),
      false,
      'no camera, no pipeline',
    );
  });

  it('a file GStreamer cannot decode: the pipeline error reaches the supervisor as a camera error', async () => {
    const file = path.join(tmp('media-src-'), 'garbage.ts');
    writeFileSync(file, Buffer.alloc(100_000, 7));
    const service = new MediaService({
      config: mediaConfigSchema.parse({
        ...base,
        source: { kind: 'file', path: file },
        ringDir: tmp('media-ring-', '/dev/shm'),
      }),
      sink: new PlainDirSink(tmp('media-clips-')),
      backoff: { minMs: 300, maxMs: 600 },
    });
    services.push(service);
    const health: MediaHealth[] = [];
    service.on('health', (h) => health.push(h));
    await service.start();
    await waitFor(() => health.some((h) => h.type === 'restart-scheduled'), 'restart', 8000);
    await service.stop();
    const err = health.find((h) => h.type === 'camera-error' || h.type === 'pipeline-error');
    assert.ok(err !== undefined, JSON.stringify(health));
    assert.doesNotMatch(
      JSON.stringify(err),
      /no frame for/,
      'reported by GStreamer, not by the stall watchdog',
    );
  });
});
