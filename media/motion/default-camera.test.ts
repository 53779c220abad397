import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { mediaConfigSchema } from '../config.js';
import type { GrayFrame } from '../frame.js';
import { MediaService } from '../service.js';
import { PlainDirSink } from '../test-helpers.js';
import { motionConfigSchema } from './config.js';
import { MotionDetector, type MotionEvent } from './detector.js';

it('the sim camera at its defaults (720p, the moving ball) gives motion at the detector defaults', {
  timeout: 60_000,
}, async (t) => {
  const ringDir = mkdtempSync('/dev/shm/motion-default-');
  const clips = mkdtempSync(path.join(tmpdir(), 'motion-default-clips-'));
  // Nothing but the ring directory is set: camera, resolution, frame rate, pattern and motion
  // branch are all the defaults a new user gets.
  const config = mediaConfigSchema.parse({ ringDir });
  assert.deepEqual(
    [config.width, config.height, config.source],
    [1280, 720, { kind: 'test', pattern: 'ball' }],
  );
  const service = new MediaService({ config, sink: new PlainDirSink(clips) });
  t.after(async () => {
    await service.stop();
    rmSync(ringDir, { recursive: true, force: true });
    rmSync(clips, { recursive: true, force: true });
  });
  const detector = new MotionDetector(motionConfigSchema.parse({}));
  let frames = 0;
  // Ten seconds of motion frames (5 fps) without a motion-start fail the test.
  const motion = new Promise<MotionEvent>((resolve, reject) => {
    service.on('motion-frame', (f: GrayFrame) => {
      frames += 1;
      for (const e of detector.process(f)) if (e.type === 'motion-start') resolve(e);
      if (frames >= 50) reject(new Error(`no motion in ${frames} frames of the moving ball`));
    });
  });
  await service.start();
  const e = await motion;
  t.diagnostic(`motion-start in zone ${e.zone} after ${frames} motion frames`);
  assert.equal(e.zone, 'frame');
});
