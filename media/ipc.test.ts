import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mediaConfigSchema } from './config.js';
import {
  MAX_FRAME_BYTES,
  MAX_SNAPSHOT_BYTES,
  MAX_STRING,
  parseParentMessage,
  parseWorkerMessage,
  type WorkerMessage,
} from './ipc.js';

const validWorker: WorkerMessage[] = [
  { type: 'ready', runId: 1, launch: 'videotestsrc ! fakesink' },
  { type: 'pipeline-up', runId: 1 },
  { type: 'segment-opened', runId: 1, path: '/dev/shm/r/r1-00000.ts', startMs: 1000 },
  { type: 'segment-closed', runId: 1, path: '/dev/shm/r/r1-00000.ts', endMs: 2000 },
  { type: 'frame', width: 162, height: 2, stride: 164, timestampMs: 5, data: new Uint8Array(328) },
  { type: 'snapshot', tsMs: 5, data: new Uint8Array(10) },
  { type: 'error', kind: 'camera', element: 'src', message: 'gone', fatal: false },
];

describe('ipc validation', () => {
  it('accepts every well-formed message', () => {
    for (const m of validWorker) assert.ok(parseWorkerMessage(m).ok, m.type);
    const config = mediaConfigSchema.parse({});
    assert.ok(
      parseParentMessage({
        type: 'start',
        runId: 2,
        config,
        encoder: 'x264enc',
        segmentLocation: '/x/r2-%05d.ts',
        maskImage: '/x/mask.png',
      }).ok,
    );
    assert.ok(parseParentMessage({ type: 'stop' }).ok);
    assert.ok(parseParentMessage({ type: 'light', on: true }).ok);
    assert.ok(
      parseParentMessage({
        type: 'start',
        runId: 3,
        config,
        encoder: 'x264enc',
        segmentLocation: '/x/r3-%05d.ts',
        maskImage: '/x/mask.png',
        light: true,
      }).ok,
    );
  });

  it('refuses oversized or inconsistent payloads', () => {
    const bad: unknown[] = [
      { type: 'frame', width: 160, height: 120, stride: 160, timestampMs: 0, data: new Uint8Array(100) },
      { type: 'frame', width: 641, height: 1, stride: 644, timestampMs: 0, data: new Uint8Array(644) },
      {
        type: 'frame',
        width: 640,
        height: 480,
        stride: 640,
        timestampMs: 0,
        data: new Uint8Array(MAX_FRAME_BYTES + 640),
      },
      { type: 'snapshot', tsMs: 0, data: new Uint8Array(MAX_SNAPSHOT_BYTES + 1) },
      { type: 'snapshot', tsMs: 0, data: 'not bytes' },
      { type: 'snapshot', tsMs: -1, data: new Uint8Array(1) },
      { type: 'error', kind: 'camera', element: 'x'.repeat(MAX_STRING + 1), message: '', fatal: false },
      { type: 'error', kind: 'meltdown', element: 'x', message: '', fatal: false },
      { type: 'segment-opened', runId: 1, path: '/x', startMs: Number.NaN },
      { type: 'pipeline-up', runId: 1, extra: true },
      { type: 'nope' },
      null,
      42,
      'stop',
    ];
    for (const m of bad)
      assert.equal(
        parseWorkerMessage(m).ok,
        false,
        JSON.stringify(m, (_k, v) => (v instanceof Uint8Array ? `bytes(${v.length})` : v)),
      );
    assert.equal(parseParentMessage({ type: 'start', runId: 1 }).ok, false);
    for (const light of [
      { type: 'light' },
      { type: 'light', on: 'yes' },
      { type: 'light', on: true, extra: 1 },
    ])
      assert.equal(parseParentMessage(light).ok, false, JSON.stringify(light));
    assert.equal(
      parseParentMessage({
        type: 'start',
        runId: 1,
        config: { fps: 1000 },
        encoder: 'x264enc',
        segmentLocation: 'x',
        maskImage: 'x',
      }).ok,
      false,
    );
  });

  it('property: never throws, and accepts only messages of a known shape', () => {
    const anyValue = fc.oneof(
      fc.anything(),
      fc.record({
        type: fc.constantFrom(
          'ready',
          'pipeline-up',
          'segment-opened',
          'segment-closed',
          'frame',
          'snapshot',
          'error',
        ),
        runId: fc.oneof(fc.integer(), fc.double()),
        path: fc.string(),
        startMs: fc.double(),
        endMs: fc.double(),
        width: fc.integer({ min: -1, max: 700 }),
        height: fc.integer({ min: -1, max: 500 }),
        stride: fc.integer({ min: -1, max: 700 }),
        timestampMs: fc.double(),
        tsMs: fc.double(),
        data: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string()),
      }),
    );
    fc.assert(
      fc.property(anyValue, (v) => {
        const r = parseWorkerMessage(v);
        const p = parseParentMessage(v);
        if (r.ok) {
          assert.ok(validWorker.some((m) => m.type === r.message.type));
          if (r.message.type === 'frame') {
            assert.equal(r.message.data.byteLength, r.message.stride * r.message.height);
          }
        }
        assert.equal(typeof p.ok, 'boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
