import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type MotionConfigInput, motionConfigSchema } from './config.js';
import { type GrayFrame, MotionDetector, type MotionEvent, MotionFrameError, rasterise } from './detector.js';

const W = 80;
const H = 60;

function detector(input: MotionConfigInput = {}): MotionDetector {
  return new MotionDetector(motionConfigSchema.parse(input));
}

/** A deterministic PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A textured static background (values 60..190) so that noise and motion sit on real detail. */
function texture(seed = 1): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(W * H);
  for (let i = 0; i < out.length; i++) out[i] = 60 + Math.floor(r() * 130);
  return out;
}

/** Draws a white square of side s with its top-left corner at (x, y), in pixels. */
function withSquare(base: Uint8Array, x: number, y: number, s: number): Uint8Array {
  const out = base.slice();
  for (let j = Math.max(0, y); j < Math.min(H, y + s); j++) {
    for (let i = Math.max(0, x); i < Math.min(W, x + s); i++) out[j * W + i] = 255;
  }
  return out;
}

function frame(data: Uint8Array, t: number): GrayFrame {
  return { width: W, height: H, timestampMs: t * 200, data };
}

function run(d: MotionDetector, frames: Uint8Array[]): MotionEvent[] {
  return frames.flatMap((f, t) => [...d.process(frame(f, t))]);
}

/** Asserts that per zone the events alternate start, end, start, ... beginning with a start. */
function assertAlternating(events: readonly MotionEvent[]): void {
  const active = new Map<string, boolean>();
  for (const e of events) {
    const was = active.get(e.zone) ?? false;
    if (e.type === 'motion-start') assert.equal(was, false, `start while active in ${e.zone}`);
    else assert.equal(was, true, `end without start in ${e.zone}`);
    active.set(e.zone, e.type === 'motion-start');
  }
}

describe('MotionDetector', () => {
  it('reports a moving square as motion, then its end once the scene is still', () => {
    const bg = texture();
    const frames: Uint8Array[] = [bg, bg, bg];
    for (let t = 0; t < 10; t++) frames.push(withSquare(bg, 5 + t * 6, 20, 10));
    for (let t = 0; t < 40; t++) frames.push(bg);
    const events = run(detector({ cooldownMs: 0 }), frames);
    assertAlternating(events);
    const starts = events.filter((e) => e.type === 'motion-start');
    const ends = events.filter((e) => e.type === 'motion-end');
    assert.equal(starts.length, 1, JSON.stringify(events));
    assert.equal(ends.length, 1, JSON.stringify(events));
    const start = starts[0] as Extract<MotionEvent, { type: 'motion-start' }>;
    assert.equal(start.zone, 'frame');
    // startFrames = 2: the second frame with the square (t = 4) starts it.
    assert.equal(start.atMs, 4 * 200);
    assert.ok(start.area > 0.01 && start.area < 0.2, `area ${start.area}`);
    const end = ends[0] as Extract<MotionEvent, { type: 'motion-end' }>;
    assert.equal(end.durationMs, end.atMs - start.atMs);
    assert.ok(end.atMs > 12 * 200);
  });

  it('reports nothing for a static scene', () => {
    const bg = texture(7);
    const events = run(
      detector(),
      Array.from({ length: 100 }, () => bg),
    );
    assert.deepEqual(events, []);
  });

  it('ignores ±8 grey levels of per-pixel sensor noise, even at a sensitive threshold', () => {
    const bg = texture(3);
    const r = prng(99);
    const noisy = Array.from({ length: 150 }, () => {
      const f = new Uint8Array(bg.length);
      for (let i = 0; i < f.length; i++) f[i] = (bg[i] as number) + Math.round(r() * 16) - 8;
      return f;
    });
    assert.deepEqual(run(detector({ sensitivity: 12, minArea: 0.005 }), noisy), []);
    // Control: the same noise with plain frame-to-frame differencing (no blur, no averaging)
    // does trigger, so the assertion above is a property of the noise handling.
    const raw = run(detector({ sensitivity: 12, minArea: 0.005, blur: false, backgroundAlpha: 1 }), noisy);
    assert.ok(raw.some((e) => e.type === 'motion-start'));
  });

  it('still sees a moving square through the sensor noise', () => {
    const bg = texture(3);
    const r = prng(5);
    const frames: Uint8Array[] = [];
    for (let t = 0; t < 30; t++) {
      const f = t >= 10 && t < 20 ? withSquare(bg, 5 + (t - 10) * 6, 20, 10) : bg.slice();
      for (let i = 0; i < f.length; i++)
        f[i] = Math.max(0, Math.min(255, (f[i] as number) + Math.round(r() * 16) - 8));
      frames.push(f);
    }
    const events = run(detector({ sensitivity: 12, minArea: 0.005 }), frames);
    assert.equal(events.filter((e) => e.type === 'motion-start').length, 1);
  });

  it('judges each zone on its own pixels: motion on the left does not trigger the right zone', () => {
    const d = detector({
      zones: [
        { name: 'left', kind: 'rect', x: 0, y: 0, w: 0.5, h: 1 },
        { name: 'right', kind: 'rect', x: 0.5, y: 0, w: 0.5, h: 1 },
      ],
    });
    const bg = texture();
    const frames = [bg, bg];
    for (let t = 0; t < 6; t++) frames.push(withSquare(bg, 2 + t * 4, 10 + t, 10)); // x stays below 32 < 40
    const events = run(d, frames);
    assert.ok(events.some((e) => e.type === 'motion-start' && e.zone === 'left'));
    assert.ok(!events.some((e) => e.zone === 'right'), JSON.stringify(events));
    assert.deepEqual(d.activeZones(), ['left']);
  });

  it('supports polygon zones: motion inside the triangle counts, inside its bounding box but outside does not', () => {
    // Triangle with vertices top-left, top-right, bottom-left: the lower-right half is outside.
    const zones = [
      {
        name: 'tri',
        kind: 'polygon' as const,
        points: [
          [0, 0],
          [1, 0],
          [0, 1],
        ] as [number, number][],
      },
    ];
    const bg = texture();
    const outside = [bg, bg];
    for (let t = 0; t < 6; t++) outside.push(withSquare(bg, 60 + (t % 2) * 3, 44, 12)); // lower right
    assert.deepEqual(run(detector({ zones }), outside), []);
    const inside = [bg, bg];
    for (let t = 0; t < 6; t++) inside.push(withSquare(bg, 5 + (t % 2) * 3, 5, 12)); // upper left
    const events = run(detector({ zones }), inside);
    assert.ok(events.some((e) => e.type === 'motion-start' && e.zone === 'tri'));
  });

  it('rasterises zones by pixel centre: a half-frame triangle covers half the pixels', () => {
    const mask = new Uint16Array(100 * 100);
    const n = rasterise(
      {
        name: 't',
        kind: 'polygon',
        points: [
          [0, 0],
          [1, 0],
          [0, 1],
        ],
      },
      100,
      100,
      mask,
      1,
    );
    assert.ok(Math.abs(n - 5000) <= 100, `count ${n}`);
    assert.equal(mask[0], 1); // top-left corner is inside
    assert.equal(mask[99 * 100 + 99], 0); // bottom-right is not
    const rect = new Uint16Array(160 * 120);
    assert.equal(
      rasterise({ name: 'r', kind: 'rect', x: 0, y: 0, w: 1, h: 1 }, 160, 120, rect, 2),
      160 * 120,
    );
    const q = new Uint16Array(160 * 120);
    assert.equal(
      rasterise({ name: 'q', kind: 'rect', x: 0.25, y: 0.5, w: 0.5, h: 0.5 }, 160, 120, q, 4),
      80 * 60,
    );
  });

  it('holds back a new start during the cooldown after an end', () => {
    const bg = texture();
    const burst = (n: number) => Array.from({ length: n }, (_, t) => withSquare(bg, 5 + t * 6, 20, 10));
    const still = (n: number) => Array.from({ length: n }, () => bg);
    // 200 ms per frame. Burst 1 ends a few quiet frames after it stops (the background forgets the
    // square's trail, then stopFrames), burst 2 follows within 5 s of that end, burst 3 long after.
    const frames = [
      ...still(2),
      ...burst(6),
      ...still(20),
      ...burst(6),
      ...still(40),
      ...burst(6),
      ...still(20),
    ];
    const events = run(detector({ cooldownMs: 5_000 }), frames);
    assertAlternating(events);
    const starts = events.filter((e) => e.type === 'motion-start').map((e) => e.atMs);
    assert.equal(starts.length, 2, JSON.stringify(events));
    const firstEnd = events.find((e) => e.type === 'motion-end')?.atMs ?? Number.NaN;
    assert.ok(28 * 200 - firstEnd < 5_000, `first end ${firstEnd}: burst 2 must fall inside the cooldown`);
    // The second burst (frames 28-33) is inside the cooldown; the third (frames 74-79) is not.
    assert.ok((starts[1] as number) >= 74 * 200, JSON.stringify(starts));
    const noCooldown = run(detector({ cooldownMs: 0 }), frames);
    assert.equal(noCooldown.filter((e) => e.type === 'motion-start').length, 3);
  });

  it('reads padded rows (stride > width) the same as packed ones', () => {
    const bg = texture();
    const frames = [bg, bg, ...Array.from({ length: 6 }, (_, t) => withSquare(bg, 5 + t * 6, 20, 10)), bg];
    const stride = W + 4;
    const pad = (f: Uint8Array) => {
      const out = new Uint8Array(stride * H).fill(0xee);
      for (let y = 0; y < H; y++) out.set(f.subarray(y * W, (y + 1) * W), y * stride);
      return out;
    };
    const a = detector();
    const b = detector();
    const ea = frames.flatMap((f, t) => [...a.process(frame(f, t))]);
    const eb = frames.flatMap((f, t) => [...b.process({ ...frame(pad(f), t), stride })]);
    assert.ok(ea.length > 0);
    assert.deepEqual(eb, ea);
  });

  it('ends active zones when the resolution changes or on reset', () => {
    const d = detector({ cooldownMs: 0 });
    const bg = texture();
    run(d, [bg, bg, withSquare(bg, 5, 5, 10), withSquare(bg, 20, 5, 10)]);
    assert.deepEqual(d.activeZones(), ['frame']);
    const ev = d.process({ width: 10, height: 10, timestampMs: 5_000, data: new Uint8Array(100) });
    assert.deepEqual(ev, [{ type: 'motion-end', zone: 'frame', atMs: 5_000, durationMs: 5_000 - 600 }]);
    assert.deepEqual(d.reset(), []);
  });

  it('refuses invalid frames with a typed error and keeps its state', () => {
    const d = detector({ maxPixels: 320 * 240 });
    const ok = { width: 4, height: 4, timestampMs: 1_000, data: new Uint8Array(16) };
    d.process(ok);
    const cases: [Partial<GrayFrame> & Record<string, unknown>, string][] = [
      [{ data: new Uint8Array(15) }, 'invalid-length'],
      [{ data: new Uint8Array(17) }, 'invalid-length'],
      [{ width: 0 }, 'invalid-size'],
      [{ height: -1 }, 'invalid-size'],
      [{ width: 2.5 }, 'invalid-size'],
      [{ width: Number.NaN }, 'invalid-size'],
      [{ width: 1_000, height: 1_000, data: new Uint8Array(1_000_000) }, 'frame-too-large'],
      [{ width: 100_000, height: 1 }, 'frame-too-large'],
      [{ stride: 3 }, 'invalid-stride'],
      [{ timestampMs: 999 }, 'invalid-timestamp'],
      [{ timestampMs: Number.POSITIVE_INFINITY }, 'invalid-timestamp'],
      [{ data: [1, 2, 3] as unknown as Uint8Array }, 'invalid-length'],
      [{ stride: '4' as unknown as number }, 'invalid-stride'],
    ];
    for (const [patch, kind] of cases) {
      assert.throws(
        () => d.process({ ...ok, ...patch } as GrayFrame),
        (e: unknown) => e instanceof MotionFrameError && e.kind === kind,
        JSON.stringify(Object.keys(patch)),
      );
    }
    assert.throws(
      () => d.process(null as unknown as GrayFrame),
      (e: unknown) => e instanceof MotionFrameError && e.kind === 'invalid-size',
    );
    // The detector still works at its resolution after the refusals.
    assert.deepEqual(d.process({ ...ok, timestampMs: 1_200 }), []);
  });

  it('refuses an invalid config with errors by path', () => {
    const r = motionConfigSchema.safeParse({
      zones: [
        { name: 'a', kind: 'rect', x: 0.8, y: 0, w: 0.5, h: 1 },
        {
          name: 'b',
          kind: 'polygon',
          points: [
            [0, 0],
            [2, 0],
            [0, 1],
          ],
        },
      ],
      sensitivity: 0,
    });
    assert.equal(r.success, false);
    const paths = (r.error?.issues ?? []).map((i) => i.path.join('.'));
    assert.ok(paths.includes('zones.0.w'), paths.join());
    assert.ok(paths.includes('zones.1.points.1.0'), paths.join());
    assert.ok(paths.includes('sensitivity'), paths.join());
    assert.deepEqual(motionConfigSchema.parse({}).zones, [
      { name: 'frame', kind: 'rect', x: 0, y: 0, w: 1, h: 1 },
    ]);
  });
});

describe('MotionDetector properties', () => {
  const zoneArb = fc.oneof(
    fc
      .record({
        x: fc.double({ min: 0, max: 0.9, noNaN: true }),
        y: fc.double({ min: 0, max: 0.9, noNaN: true }),
      })
      .chain(({ x, y }) =>
        fc.record({
          kind: fc.constant('rect' as const),
          x: fc.constant(x),
          y: fc.constant(y),
          w: fc.double({ min: 0.05, max: 1 - x, noNaN: true }),
          h: fc.double({ min: 0.05, max: 1 - y, noNaN: true }),
        }),
      ),
    fc.record({
      kind: fc.constant('polygon' as const),
      points: fc.array(
        fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
        {
          minLength: 3,
          maxLength: 8,
        },
      ),
    }),
  );
  const configArb = fc.record({
    zones: fc
      .array(zoneArb, { minLength: 1, maxLength: 4 })
      .map((zs) => zs.map((z, i) => ({ ...z, name: `z${i}` }))),
    sensitivity: fc.integer({ min: 1, max: 80 }),
    minArea: fc.double({ min: 0.001, max: 1, noNaN: true }),
    startFrames: fc.integer({ min: 1, max: 3 }),
    stopFrames: fc.integer({ min: 1, max: 3 }),
    cooldownMs: fc.integer({ min: 0, max: 1_000 }),
    backgroundAlpha: fc.double({ min: 0.01, max: 1, noNaN: true }),
    blur: fc.boolean(),
  });

  it('any valid frame sequence: never throws, events alternate per zone and carry sane fields', () => {
    const frameArb = fc
      .record({
        w: fc.integer({ min: 1, max: 12 }),
        h: fc.integer({ min: 1, max: 12 }),
        pad: fc.integer({ min: 0, max: 4 }),
      })
      .chain(({ w, h, pad }) =>
        fc.record({
          width: fc.constant(w),
          height: fc.constant(h),
          stride: fc.constant(w + pad),
          dt: fc.integer({ min: 0, max: 500 }),
          data: fc.uint8Array({ minLength: (w + pad) * h, maxLength: (w + pad) * h }),
        }),
      );
    fc.assert(
      fc.property(configArb, fc.array(frameArb, { maxLength: 40 }), fc.boolean(), (cfg, frames, sameSize) => {
        const d = new MotionDetector(motionConfigSchema.parse(cfg));
        const first = frames[0];
        let t = 0;
        const events: MotionEvent[] = [];
        for (const f of frames) {
          t += f.dt;
          const g =
            sameSize && first
              ? {
                  width: first.width,
                  height: first.height,
                  stride: first.stride,
                  data: resize(f.data, first.stride * first.height),
                }
              : f;
          for (const e of d.process({ ...g, timestampMs: t })) events.push(e);
        }
        events.push(...d.reset());
        assertAlternating(events);
        const names = new Set(cfg.zones.map((z) => z.name));
        for (const e of events) {
          assert.ok(names.has(e.zone));
          if (e.type === 'motion-start') assert.ok(e.area > 0 && e.area <= 1);
          else assert.ok(e.durationMs >= 0);
        }
        assert.deepEqual(d.activeZones(), []);
      }),
      { numRuns: 300 },
    );
  });

  it('any frame-shaped input: refused with MotionFrameError or accepted, never another error', () => {
    const anyNum = fc.oneof(
      fc.integer({ min: -5, max: 40 }),
      fc.constantFrom(0, 1, 2 ** 31, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, -0, 0.5, 1e9),
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            width: anyNum,
            height: anyNum,
            stride: fc.option(anyNum, { nil: undefined }),
            timestampMs: fc.oneof(
              fc.integer({ min: -10, max: 10_000 }),
              fc.constantFrom(Number.NaN, -Infinity),
            ),
            data: fc.uint8Array({ maxLength: 400 }),
          }),
          { maxLength: 20 },
        ),
        (frames) => {
          const d = detector({ maxPixels: 10_000 });
          for (const f of frames) {
            try {
              d.process(f);
            } catch (e) {
              assert.ok(e instanceof MotionFrameError, String(e));
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

function resize(data: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  out.set(data.subarray(0, n));
  return out;
}
