import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { MotionAnalyser } from './analyser.js';
import { motionConfigSchema } from './config.js';
import { MotionDetector, type MotionEvent } from './detector.js';

const W = 32;
const H = 24;
const still = new Uint8Array(W * H).fill(100);
const square = (x: number) => {
  const f = still.slice();
  for (let y = 4; y < 14; y++) for (let i = x; i < x + 10; i++) f[y * W + i] = 250;
  return f;
};

describe('MotionAnalyser', () => {
  it('drops refused frames, survives a clock set back and a throwing listener, and delivers events', () => {
    const events: MotionEvent[] = [];
    let calls = 0;
    const a = new MotionAnalyser(
      new MotionDetector(motionConfigSchema.parse({ cooldownMs: 0, stopFrames: 2 })),
      (e) => {
        calls++;
        if (calls === 1) throw new Error('listener bug');
        events.push(e);
      },
      silentLogger(),
    );
    const frame = (data: Uint8Array, t: number) => ({ width: W, height: H, stride: W, timestampMs: t, data });
    a.onFrame(frame(still, 1_000));
    a.onFrame({ ...frame(still, 1_100), data: new Uint8Array(3) }); // refused, dropped
    a.onFrame(frame(square(2), 1_200));
    a.onFrame(frame(square(12), 1_400)); // start (delivered to the throwing listener)
    a.onFrame(frame(square(20), 1_600));
    a.onFrame(frame(square(2), 500)); // the clock went back: active motion ends at 1_600
    assert.deepEqual(events, [{ type: 'motion-end', zone: 'frame', atMs: 1_600, durationMs: 200 }]);
    // Detection goes on from the new time base.
    a.onFrame(frame(square(12), 700));
    a.onFrame(frame(square(20), 900));
    assert.deepEqual(events.at(-1)?.type, 'motion-start');
    assert.equal(events.at(-1)?.atMs, 900);
  });
});
