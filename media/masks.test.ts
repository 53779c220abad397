import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { type Mask, mediaConfigSchema } from './config.js';
import { maskChain, maskPixels } from './pipeline/build.js';
import { el, type LaunchGraph, toLaunchArgv, word } from './pipeline/launch.js';
import { blackPixelPng, MASK_IMAGE_FILE } from './pipeline/mask-image.js';
import { MediaSupervisor } from './supervisor.js';
import { execFileP } from './test-helpers.js';

/**
 * Privacy masks are fail-closed: every frame that reaches the encoder, the
 * snapshot or the motion branch has every mask drawn into it. The geometry
 * here is used by no other test (two masks, odd offsets), the picture is
 * white, so one unmasked pixel reads as luma ~235 where a masked one reads ~16.
 */
const W = 160;
const H = 120;
const MASKS: Mask[] = [
  { x: 0.15625, y: 0.1, w: 0.3, h: 0.35 },
  { x: 0.6, y: 0.55, w: 0.25, h: 0.3 },
];
/** Decoded H.264 rings at a mask's edges: the interior is checked with this margin. */
const MARGIN = 2;
/** Masked luma is black (16) plus the codec's error. */
const MASKED_MAX = 40;
/** The white picture outside the masks. */
const UNMASKED_MIN = 180;

/** Luma of every frame in a raw GRAY8 W x H stream: the worst pixel inside any mask and the mean outside all. */
function scanFrames(raw: Buffer): { frames: number; worstMasked: number[]; meanUnmasked: number[] } {
  const rects = MASKS.map((m) => maskPixels(m, W, H));
  const inside = (x: number, y: number, margin: number) =>
    rects.some(
      (r) => x >= r.x + margin && x < r.x + r.w - margin && y >= r.y + margin && y < r.y + r.h - margin,
    );
  const frames = Math.floor(raw.length / (W * H));
  const worstMasked: number[] = [];
  const meanUnmasked: number[] = [];
  for (let f = 0; f < frames; f++) {
    let worst = 0;
    let sum = 0;
    let n = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const v = raw[f * W * H + y * W + x] as number;
        if (inside(x, y, MARGIN)) worst = Math.max(worst, v);
        else if (!inside(x, y, -MARGIN)) {
          sum += v;
          n += 1;
        }
      }
    }
    worstMasked.push(worst);
    meanUnmasked.push(sum / n);
  }
  return { frames, worstMasked, meanUnmasked };
}

/** Every frame of an MPEG-TS segment, decoded by GStreamer to GRAY8 W x H. */
async function decodeSegment(file: string): Promise<Buffer> {
  const { stdout } = await execFileP(
    'gst-launch-1.0',
    [
      '-q',
      'filesrc',
      `location=${file}`,
      '!',
      'tsdemux',
      '!',
      'h264parse',
      '!',
      'avdec_h264',
      '!',
      'videoconvert',
      '!',
      `video/x-raw,format=GRAY8,width=${W},height=${H}`,
      '!',
      'fdsink',
      'fd=1',
    ],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 30_000 },
  );
  return stdout as unknown as Buffer;
}

/** Runs a gst-launch line to its end; resolves with its exit code and stderr. */
function gstLaunch(graph: LaunchGraph): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('gst-launch-1.0', ['-q', ...toLaunchArgv(graph)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

describe('privacy masks fail closed', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'media-masks-'));
  const ringDir = mkdtempSync('/dev/shm/media-masks-ring-');
  const maskImage = path.join(ringDir, MASK_IMAGE_FILE);
  writeFileSync(maskImage, blackPixelPng());
  const config = mediaConfigSchema.parse({
    source: { kind: 'test', pattern: 'white' },
    width: W,
    height: H,
    fps: 15,
    bitrateKbps: 300,
    // Half-second segments: each start's first segment (from frame 0) closes sooner.
    segmentS: 0.5,
    prerollS: 1,
    postrollS: 1,
    ringDir,
    masks: MASKS,
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(ringDir, { recursive: true, force: true });
  });

  /** A white camera whose frames come `sleepUs` late each, through the masks, to a raw GRAY8 file. */
  const cameraThroughMasks = (out: string, sleepUs: number, image: string): LaunchGraph => [
    [
      el('videotestsrc', { 'is-live': true, pattern: word('white'), 'num-buffers': 4 }),
      el('identity', { 'sleep-time': sleepUs }),
      el('capsfilter', { caps: `video/x-raw,format=I420,width=${W},height=${H}` }),
      ...maskChain(config, image),
      el('videoconvert'),
      el('capsfilter', { caps: `video/x-raw,format=GRAY8,width=${W},height=${H}` }),
      el('filesink', { location: out }),
    ],
  ];

  it('frames 1.2 s late (the delay that leaked past the old compositor masks) are masked, every one', async () => {
    const out = path.join(dir, 'late.gray');
    const r = await gstLaunch(cameraThroughMasks(out, 1_200_000, maskImage));
    assert.equal(r.code, 0, r.stderr);
    const scan = scanFrames(readFileSync(out));
    assert.equal(scan.frames, 4);
    // Uncompressed: the masks are exactly black, the rest exactly white.
    assert.deepEqual(scan.worstMasked, [16, 16, 16, 16]);
    assert.ok(
      scan.meanUnmasked.every((m) => m > 230),
      `unmasked ${scan.meanUnmasked}`,
    );
  });

  it('a mask whose image cannot be read stops the pipeline before any frame is written', async () => {
    const out = path.join(dir, 'missing.gray');
    const r = await gstLaunch(cameraThroughMasks(out, 0, path.join(dir, 'no-such-mask.png')));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Could not load overlay image/);
    let written = 0;
    try {
      written = readFileSync(out).length;
    } catch {
      // never created: nothing written either
    }
    assert.equal(written, 0, 'no frame passed the mask that could not be drawn');
  });

  it('across 50 starts of the real media worker, frame 0 and every other frame of each first segment is masked', async (t) => {
    const STARTS = 50;
    const LANES = 2;
    const segments: string[] = [];
    const oneStart = async (n: number): Promise<void> => {
      const sup = new MediaSupervisor({
        startMessage: (runId) => ({
          type: 'start',
          runId,
          config,
          encoder: 'x264enc',
          segmentLocation: path.join(ringDir, `s${n}-r${runId}-%05d.ts`),
          maskImage,
        }),
      });
      const first = new Promise<string>((resolve, reject) => {
        sup.on('message', (m) => {
          if (m.type === 'segment-closed' && m.path.endsWith('-00000.ts')) resolve(m.path);
        });
        sup.on('health', (h) => {
          if (h.type === 'pipeline-error' || h.type === 'worker-exit')
            reject(new Error(`worker start ${n}: ${JSON.stringify(h)}`));
        });
      });
      try {
        sup.start();
        const segment = await first;
        const kept = path.join(dir, `start-${n}.ts`);
        copyFileSync(segment, kept);
        segments[n] = kept;
      } finally {
        await sup.stop();
      }
    };
    const lanes = Array.from({ length: LANES }, async (_, lane) => {
      for (let n = lane; n < STARTS; n += LANES) await oneStart(n);
    });
    await Promise.all(lanes);
    let frames = 0;
    for (const [n, file] of segments.entries()) {
      const scan = scanFrames(await decodeSegment(file));
      assert.ok(scan.frames >= 5, `start ${n}: only ${scan.frames} frames in the first segment`);
      frames += scan.frames;
      for (let f = 0; f < scan.frames; f++) {
        assert.ok(
          (scan.worstMasked[f] as number) <= MASKED_MAX,
          `start ${n}, frame ${f}: a masked pixel reads luma ${scan.worstMasked[f]}`,
        );
        assert.ok(
          (scan.meanUnmasked[f] as number) >= UNMASKED_MIN,
          `start ${n}, frame ${f}: the picture outside the masks reads ${scan.meanUnmasked[f]} (not the white camera)`,
        );
      }
    }
    t.diagnostic(`${STARTS} worker starts, ${frames} frames decoded, every mask drawn in every one`);
  });
});
