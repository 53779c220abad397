import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { HalError } from './errors.js';
import { gstInspectCheck } from './gst-element-check.js';
import { TestPatternCamera } from './sim/test-pattern-camera.js';

test('the sim camera describes videotestsrc with the moving ball pattern', () => {
  const camera = new TestPatternCamera(async () => true);
  assert.equal(camera.kind, 'sim-test-pattern');
  assert.deepEqual(camera.describe(), {
    element: 'videotestsrc',
    properties: { pattern: 'ball', 'is-live': true },
  });
});

test('probe resolves when the element exists and throws HalError unavailable when not', async () => {
  await new TestPatternCamera(async () => true).probe();
  await assert.rejects(
    new TestPatternCamera(async () => false).probe(),
    (err) => err instanceof HalError && err.kind === 'unavailable' && /videotestsrc/.test(err.message),
  );
});

function hasGstInspect(): boolean {
  try {
    execFileSync('gst-inspect-1.0', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('gstInspectCheck asks the real gst-inspect-1.0', async (t) => {
  if (!hasGstInspect()) {
    t.skip('gst-inspect-1.0 is not installed (Debian: gstreamer1.0-tools)');
    return;
  }
  assert.equal(await gstInspectCheck('fakesink'), true);
  assert.equal(await gstInspectCheck('no-such-element-xyz'), false);
});
