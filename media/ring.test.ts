import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ClipMeta, ClipSink } from './clip-sink.js';
import { ClipRecorder } from './clips.js';
import { type ClosedSegment, SegmentRing, segmentLocation, selectSegments } from './ring.js';

const seg = (runId: number, i: number, startMs: number, lenMs = 1000): ClosedSegment => ({
  runId,
  path: `/ring/r${runId}-${String(i).padStart(5, '0')}.ts`,
  startMs,
  endMs: startMs + lenMs,
});

describe('segment ring', () => {
  it('indexes only segment files inside the ring dir and deletes what ages out', async () => {
    const removed: string[] = [];
    const ring = new SegmentRing(
      '/ring',
      async (p) => {
        removed.push(p);
      },
      async (p) => (p.endsWith('00001.ts') ? 100 : 0),
    );
    assert.equal(ring.opened(1, '/etc/passwd', 0), false);
    assert.equal(ring.opened(1, '/ring/../etc/r1-00000.ts', 0), false);
    assert.equal(ring.opened(1, '/ring/sub/r1-00000.ts', 0), false);
    assert.equal(ring.opened(1, segmentLocation('/ring', 1).replace('%05d', '00000'), 0), true);
    ring.opened(1, '/ring/r1-00001.ts', 1000);
    ring.closed(1, '/ring/r1-00000.ts', 1000);
    assert.equal(ring.closedSegments().length, 1);
    await ring.runEnded(1, 1500);
    assert.deepEqual(
      ring.closedSegments().map((s) => s.endMs),
      [1000, 1500],
    );
    assert.equal(ring.prune(1200), 1);
    assert.deepEqual(removed, ['/ring/r1-00000.ts']);
  });

  it('selects the segments whose boundaries are nearest the window', () => {
    const all = [0, 1000, 2000, 3000, 4000, 5000].map((t, i) => seg(1, i, t));
    assert.deepEqual(
      selectSegments(all, 1200, 3700).map((s) => s.startMs),
      [1000, 2000, 3000],
    );
    assert.deepEqual(
      selectSegments(all, 1600, 3300).map((s) => s.startMs),
      [2000],
    );
    // Two worker runs: the run holding most of the window wins, no mixing of timelines.
    const mixed = [seg(1, 0, 0), seg(1, 1, 1000), seg(2, 0, 1500), seg(2, 1, 2500), seg(2, 2, 3500)];
    assert.deepEqual(
      selectSegments(mixed, 1400, 4400).map((s) => s.runId),
      [2, 2, 2],
    );
  });

  it('property: contiguous segments give a clip within one segment of the window, starting at most half a segment late', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 500, max: 2000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 0, max: 30_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        (segMs, t0, pre, len) => {
          const all = Array.from({ length: Math.ceil((pre + len) / segMs) + 80 }, (_x, i) =>
            seg(1, i, t0 + i * segMs, segMs),
          );
          const from = t0 + 10 * segMs + (pre % segMs);
          const to = from + len;
          const s = selectSegments(all, from, to);
          assert.ok(s.length >= 1);
          const first = s[0] as ClosedSegment;
          const last = s[s.length - 1] as ClosedSegment;
          assert.ok(first.startMs <= from + segMs / 2);
          assert.ok(
            Math.abs(last.endMs - first.startMs - (to - from)) <= segMs,
            `${last.endMs - first.startMs} vs ${to - from}`,
          );
        },
      ),
    );
  });
});

class NullSink implements ClipSink {
  readonly metas: ClipMeta[] = [];
  async writeClip(meta: ClipMeta, plaintext: AsyncIterable<Uint8Array> | Uint8Array) {
    if (!(plaintext instanceof Uint8Array)) for await (const _ of plaintext);
    this.metas.push(meta);
    return { id: meta.id, bytes: 1, sha256: '0'.repeat(64) };
  }
}

describe('clip recorder', () => {
  it('merges overlapping triggers into one clip and cuts once the window is covered', async () => {
    let now = 10_000;
    const ring = new SegmentRing('/ring', async () => {});
    const sink = new NullSink();
    const rec = new ClipRecorder({
      ring,
      ringDir: '/ring',
      sink,
      prerollMs: 2000,
      postrollMs: 1000,
      segmentMs: 1000,
      now: () => now,
      assemble: async function* () {
        yield new Uint8Array(1);
      },
    });
    const finished: string[] = [];
    const failed: string[] = [];
    rec.on('clip-finished', (c) => finished.push(c.id));
    rec.on('clip-failed', (c) => failed.push(c.id));
    for (let i = 0; i < 7; i++) {
      ring.opened(1, `/ring/r1-0000${i}.ts`, 5000 + i * 1000);
      ring.closed(1, `/ring/r1-0000${i}.ts`, 6000 + i * 1000);
    }
    const a = rec.trigger('press', 9000);
    const b = rec.trigger('motion', 9500); // overlaps: merged
    assert.equal(a, b);
    const c = rec.trigger('press', 13_500); // later: its own clip, not yet covered
    assert.notEqual(c, a);
    const d = rec.trigger('press', 40_000); // nothing in the ring for it
    now = 11_000;
    rec.poll();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(finished, [a]);
    await rec.drain();
    assert.deepEqual(finished, [a, c]);
    assert.deepEqual(failed, [d]);
    const meta = sink.metas[0] as ClipMeta;
    assert.deepEqual(meta.reasons, ['press', 'motion']);
    assert.equal(meta.startMs, 7000);
    assert.equal(meta.endMs, 11_000);
    assert.equal(meta.truncated, false);
    assert.equal((sink.metas[1] as ClipMeta).truncated, true);
  });
});
