import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, withBrowserLog } from '../test-support/browser.js';
import { waitFor } from '../test-support/wait-for.js';
import { mediaConfigSchema } from './config.js';
import type { GrayFrame } from './frame.js';
import { type ClipFinished, MediaService } from './service.js';
import { discovererDuration, execFileP, ffprobeDuration, PlainDirSink } from './test-helpers.js';

/**
 * One real pipeline (320x240@15, 1 s segments, pre-roll 2 s, post-roll 1 s, a
 * privacy mask over the top-left quadrant, SMPTE bars so that unmasked areas are
 * never black), one merged clip, checked with ffprobe, gst-discoverer, ffmpeg
 * (decoded pixels) and Chromium.
 */
const W = 320;
const H = 240;
const SEG_MS = 1000;

describe('MediaService on a real GStreamer pipeline', { timeout: 90_000 }, () => {
  const clipDir = mkdtempSync(path.join(tmpdir(), 'media-clips-'));
  const ringDir = mkdtempSync('/dev/shm/media-ring-');
  const config = mediaConfigSchema.parse({
    source: { kind: 'test', pattern: 'smpte' },
    width: W,
    height: H,
    fps: 15,
    bitrateKbps: 400,
    segmentS: 1,
    prerollS: 2,
    postrollS: 1,
    ringDir,
    masks: [{ x: 0, y: 0, w: 0.5, h: 0.5 }],
  });
  const sink = new PlainDirSink(clipDir);
  const service = new MediaService({ config, sink });
  const frames: GrayFrame[] = [];
  service.on('motion-frame', (f) => frames.push(f));
  const prerollReady = new Promise<void>((resolve) =>
    service.on('health', (h) => {
      if (h.type === 'preroll-ready') resolve();
    }),
  );
  let clip: ClipFinished | undefined;
  let triggerAt = 0;
  let finishedAt = 0;

  before(async () => {
    await service.start();
    assert.ok(service.isUp, 'pipeline up after start()');
  });
  after(async () => {
    await service.stop();
    rmSync(clipDir, { recursive: true, force: true });
    rmSync(ringDir, { recursive: true, force: true });
  });

  it('snapshots are JPEGs at most 1 s old; motion frames are GRAY8 and masked', async () => {
    await waitFor(
      () => frames.length >= 5 && service.latestSnapshot() !== undefined,
      'frames and a snapshot',
      5000,
    );
    const snap = await service.snapshotNow();
    assert.ok(Date.now() - snap.tsMs <= 1000, `snapshot ${Date.now() - snap.tsMs} ms old`);
    assert.equal(snap.bytes[0], 0xff);
    assert.equal(snap.bytes[1], 0xd8);
    // Over the next eight snapshots, none comes more than 1 s after the one before: the
    // latest is never older than 1 s.
    let previous = snap.tsMs;
    for (let i = 0; i < 8; i++) {
      const next = await new Promise<{ tsMs: number }>((resolve) => service.once('snapshot', resolve));
      assert.ok(next.tsMs - previous <= 1000, `a snapshot ${next.tsMs - previous} ms after the one before`);
      previous = next.tsMs;
    }
    const f = frames[frames.length - 1] as GrayFrame;
    assert.equal(f.width, config.motion.width);
    assert.equal(f.height, config.motion.height);
    assert.equal(f.data.length, f.stride * f.height);
    // The motion branch sees the masked picture: top-left quadrant black, top-right not.
    const at = (x: number, y: number) => f.data[y * f.stride + x] as number;
    assert.ok(at(20, 20) <= 20, `masked pixel ${at(20, 20)}`);
    assert.ok(at(140, 20) > 40, `unmasked pixel ${at(140, 20)}`);
  });

  it('overlapping triggers make one clip covering [first - preroll, last + postroll]', async () => {
    await prerollReady; // the ring holds the whole pre-roll
    triggerAt = Date.now();
    const id1 = service.trigger('press', triggerAt);
    const id2 = service.trigger('motion', triggerAt + 500);
    assert.equal(id1, id2);
    clip = await new Promise<ClipFinished>((resolve, reject) => {
      service.once('clip-finished', resolve);
      service.once('clip-failed', (e) => reject(new Error(e.error)));
    });
    finishedAt = Date.now();
    assert.deepEqual(clip.reasons, ['press', 'motion']);
    assert.equal(clip.truncated, false);
    const expectedStart = triggerAt - 2000;
    const expectedEnd = triggerAt + 500 + 1000;
    assert.ok(
      clip.startMs <= expectedStart + SEG_MS,
      `first frame at ${clip.startMs - expectedStart} ms past start`,
    );
    assert.ok(Math.abs(clip.endMs - clip.startMs - (expectedEnd - expectedStart)) <= 1000);
    assert.equal(sink.written.length, 1);
    const file = sink.written[0]?.path as string;
    const data = readFileSync(file);
    assert.equal(data.length, clip.bytes);
    // moov before mdat (fast start).
    assert.ok(data.indexOf('moov') < data.indexOf('mdat'));
    const expectedS = (expectedEnd - expectedStart) / 1000;
    const probed = await ffprobeDuration(file);
    // The profile docs/media.md names, as ffprobe reads it from the stream.
    const { stdout: profile } = await execFileP('ffprobe', [
      '-v',
      'error',
      '-select_streams',
      'v',
      '-show_entries',
      'stream=profile',
      '-of',
      'default=nw=1:nk=1',
      file,
    ]);
    assert.equal(profile.trim(), 'Constrained Baseline');
    assert.ok(Math.abs(probed - expectedS) <= 1, `ffprobe duration ${probed} s, expected ${expectedS} s`);
    const discovered = await discovererDuration(file);
    assert.ok(Math.abs(discovered - probed) < 0.2, `gst-discoverer ${discovered} s vs ffprobe ${probed} s`);
    // Latency press -> clip-finished: the post-roll, then one GOP (splitmuxsink) and the remux.
    assert.ok(
      finishedAt - (triggerAt + 1500) < 5000,
      `clip finished ${finishedAt - triggerAt} ms after the press`,
    );
  });

  it('the privacy mask is burned into the recorded clip', async () => {
    const file = sink.written[0]?.path as string;
    const { stdout } = await execFileP(
      'ffmpeg',
      ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'],
      {
        encoding: 'buffer',
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    const raw = stdout as unknown as Buffer;
    const n = Math.floor(raw.length / (W * H));
    assert.ok(n >= 30, `decoded ${n} frames`);
    for (let i = 0; i < n; i += 5) {
      const base = i * W * H;
      let maskedMax = 0;
      let restSum = 0;
      let restN = 0;
      for (let y = 0; y < H / 2; y++) {
        for (let x = 0; x < W; x++) {
          const v = raw[base + y * W + x] as number;
          // Two pixels of margin at the mask's inner edges for the codec's ringing.
          if (x < W / 2 - 2 && y < H / 2 - 2) maskedMax = Math.max(maskedMax, v);
          else if (x >= W / 2 + 2) {
            restSum += v;
            restN += 1;
          }
        }
      }
      assert.ok(maskedMax <= 24, `frame ${i}: masked region reaches luma ${maskedMax}`);
      assert.ok(restSum / restN > 60, `frame ${i}: unmasked region mean luma ${restSum / restN}`);
    }
  });

  it('plays in Chromium', async () => {
    const file = sink.written[0]?.path as string;
    const body = readFileSync(file);
    const server = createServer((req, res) => {
      if (req.url === '/clip.mp4') {
        res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': body.length });
        res.end(body);
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<!doctype html><video id="v" muted preload="auto" src="/clip.mp4"></video>');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      // A string, not a function: tsx's transform would add helpers the page does not have.
      const r = (await withBrowserLog(browser, async () => {
        await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
        return page.evaluate(`new Promise((resolve) => {
        const v = document.getElementById('v');
        const done = () => resolve({ duration: v.duration, width: v.videoWidth, error: null });
        if (v.readyState >= 2) done();
        v.addEventListener('loadeddata', done);
        v.addEventListener('error', () =>
          resolve({ duration: NaN, width: 0, error: 'media error ' + v.error?.code + ' ' + v.error?.message }));
      })`);
      })) as { duration: number; width: number; error: string | null };
      assert.equal(r.error, null);
      assert.equal(r.width, W);
      const probed = await ffprobeDuration(file);
      assert.ok(Math.abs(r.duration - probed) < 0.2, `chromium duration ${r.duration} vs ffprobe ${probed}`);
    } finally {
      await browser.close();
      server.close();
    }
  });

  it('old segments leave the ring; stop() empties it, unannounced segments too, and removes it', async () => {
    const files = readdirSync(ringDir).filter((n) => n.endsWith('.ts'));
    // pre-roll 2 s + two spare segments + the 2 s safety margin + the open one.
    assert.ok(files.length <= 8, `${files.length} segments in the ring`);
    // A segment the worker began but never announced (its message died with it) goes too.
    writeFileSync(path.join(ringDir, 'r999-00000.ts'), 'plaintext the ring never heard of');
    await service.stop();
    assert.equal(existsSync(ringDir), false, 'no plaintext and no directory is left in RAM');
  });
});
