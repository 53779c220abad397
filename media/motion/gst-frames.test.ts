import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { motionConfigSchema } from './config.js';
import { MotionDetector, type MotionEvent } from './detector.js';

/**
 * Real frames: GRAY8 buffers produced by GStreamer's own videotestsrc, written raw with
 * filesink, split into frames by the row stride GStreamer uses (rows padded to 4 bytes).
 */
function gstFrames(dir: string, pattern: string, width: number, height: number, n: number): Uint8Array[] {
  const file = join(dir, `${pattern}-${width}x${height}.gray`);
  execFileSync(
    'gst-launch-1.0',
    [
      '-q',
      'videotestsrc',
      `pattern=${pattern}`,
      `num-buffers=${n}`,
      '!',
      `video/x-raw,format=GRAY8,width=${width},height=${height},framerate=5/1`,
      '!',
      'filesink',
      `location=${file}`,
    ],
    { timeout: 15_000, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const bytes = readFileSync(file);
  const stride = Math.ceil(width / 4) * 4;
  const size = stride * height;
  assert.equal(bytes.length, size * n, 'raw file is n frames of stride x height bytes');
  return Array.from({ length: n }, (_, i) => new Uint8Array(bytes.buffer, bytes.byteOffset + i * size, size));
}

function feed(frames: Uint8Array[], width: number, height: number, config: object = {}): MotionEvent[] {
  const d = new MotionDetector(motionConfigSchema.parse(config));
  const stride = Math.ceil(width / 4) * 4;
  return frames.flatMap((data, i) => [...d.process({ width, height, stride, data, timestampMs: i * 200 })]);
}

function hasGst(): boolean {
  try {
    execFileSync('gst-inspect-1.0', ['videotestsrc'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

const skip = hasGst() ? false : 'gst-launch-1.0 with videotestsrc is not installed';

describe('MotionDetector on frames from a real GStreamer pipeline', { skip }, () => {
  it('videotestsrc pattern=ball (moving) yields motion; checkers and black (static) yield none', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'motion-gst-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));

    const ball = gstFrames(dir, 'ball', 160, 120, 30);
    assert.notDeepEqual(ball[0], ball[5], 'the ball frames differ');
    const moving = feed(ball, 160, 120);
    assert.ok(
      moving.some((e) => e.type === 'motion-start' && e.zone === 'frame'),
      `expected motion from the ball, got ${JSON.stringify(moving)}`,
    );

    // 162 wide: GStreamer pads each row to 164 bytes, so this also exercises the stride.
    const checkers = gstFrames(dir, 'checkers-8', 162, 120, 30);
    assert.ok(
      checkers[0]?.some((v) => v > 50),
      'the checkers frames are not blank',
    );
    assert.deepEqual(feed(checkers, 162, 120), []);

    assert.deepEqual(feed(gstFrames(dir, 'black', 160, 120, 30), 160, 120), []);
  });

  it('smpte: its changing noise block (lower right) triggers the whole frame but not a zone that excludes it', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'motion-gst-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const smpte = gstFrames(dir, 'smpte', 160, 120, 30);
    assert.ok(feed(smpte, 160, 120).some((e) => e.type === 'motion-start'));
    const zones = [
      { name: 'bars', kind: 'rect', x: 0, y: 0, w: 0.72, h: 1 },
      {
        name: 'top',
        kind: 'polygon',
        points: [
          [0, 0],
          [1, 0],
          [1, 0.7],
          [0, 0.7],
        ],
      },
    ];
    assert.deepEqual(feed(smpte, 160, 120, { zones }), []);
  });
});
