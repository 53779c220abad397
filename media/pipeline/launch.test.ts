import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mediaConfigSchema } from '../config.js';
import { buildMediaGraph, clipAssemblyGraph, maskPixels } from './build.js';
import {
  caps,
  el,
  factoriesOf,
  LaunchSpecError,
  MAX_STRING_VALUE,
  quote,
  ref,
  toLaunchArgv,
  toLaunchString,
  word,
} from './launch.js';
import { checkElements, chooseEncoder, explainPipelineError, MediaConfigError } from './preflight.js';

const gst = createRequire(import.meta.url)('gstreamer-superficial') as typeof import('gstreamer-superficial');

// biome-ignore lint/suspicious/noControlCharactersInRegex: the builder's rule, restated
const CONTROL = /[\u0000-\u001f\u007f]/;
const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('launch builder', () => {
  it('renders elements, caps, refs and links', () => {
    const g = [
      [el('videotestsrc', { 'is-live': true, pattern: word('ball') }, 'src'), el('tee', {}, 't')],
      [
        ref('t'),
        el('queue'),
        caps('video/x-raw', { format: { word: 'GRAY8' }, width: 160, framerate: { num: 5, den: 1 } }),
        el('fakesink', { sync: false }),
      ],
    ];
    assert.equal(
      toLaunchString(g),
      'videotestsrc name=src is-live=true pattern=ball ! tee name=t t. ! queue ! video/x-raw,format=GRAY8,width=160,framerate=5/1 ! fakesink sync=false',
    );
    assert.deepEqual(toLaunchArgv([[el('filesink', { location: 'a "b" c' })]]), [
      'filesink',
      'location=a "b" c',
    ]);
    assert.deepEqual(factoriesOf(g), ['fakesink', 'queue', 'tee', 'videotestsrc']);
  });

  it('rejects names, properties, words and numbers that could break out', () => {
    const bad: (() => unknown)[] = [
      () => toLaunchString([[el('fakesrc ! filesink')]]),
      () => toLaunchString([[el('fakesrc', {}, 'a b')]]),
      () => toLaunchString([[el('fakesrc', { 'num-buffers=1 ! x': 1 })]]),
      () => toLaunchString([[el('videotestsrc', { pattern: word('ball ! filesink') })]]),
      () => toLaunchString([[el('fakesrc', { 'num-buffers': Number.NaN })]]),
      () => toLaunchString([[el('fakesrc', { 'num-buffers': 1e21 })]]),
      () => toLaunchString([[el('filesink', { location: 'a\nb' })]]),
      () => toLaunchString([[el('filesink', { location: 'x'.repeat(MAX_STRING_VALUE + 1) })]]),
      () => toLaunchString([[caps('video/x-raw ! filesink', {})]]),
      () => toLaunchString([[caps('video/x-raw', { 'width=1,x': 1 })]]),
      () => toLaunchString([[ref('t', 'src ! x')]]),
      () => toLaunchString([]),
      () => toLaunchString([[]]),
    ];
    for (const f of bad) assert.throws(f, LaunchSpecError);
  });

  it('property: any string value reaches GStreamer unchanged or is refused (fast-check, real gst_parse_launch)', () => {
    // Each Pipeline leaks in gstreamer-superficial; 150 tiny unplayed pipelines are fine in a test.
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 })),
        (s) => {
          const expectOk = !CONTROL.test(s) && !LONE.test(s);
          let launch: string;
          try {
            launch = toLaunchString([[el('fakesrc'), el('filesink', { location: s }, 'f')]]);
          } catch (err) {
            assert.ok(err instanceof LaunchSpecError);
            assert.ok(!expectOk, `refused a valid string ${JSON.stringify(s)}`);
            return;
          }
          assert.ok(expectOk);
          const p = new gst.Pipeline(launch);
          const f = p.findChild('f');
          const got = f?.location;
          assert.ok(
            got === s || (s === '' && got === null),
            `${JSON.stringify(s)} came back as ${JSON.stringify(got)}`,
          );
          // Nothing else in the pipeline: no element was injected through the value.
          assert.equal(p.findChild('filesink1'), undefined);
        },
      ),
      // Strings GStreamer's deserialiser would unwrap or read as no string.
      { numRuns: 150, examples: [['"'], ['""'], ['"a"'], ['"\\1"'], ['NULL']] },
    );
  });

  it('property: quote() output is one token with balanced escapes', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const q = quote(s);
        assert.ok(q.startsWith('"') && q.endsWith('"'));
        // Unescape as gst's lexer does and get the input back.
        assert.equal(q.slice(1, -1).replace(/\\(.)/gs, '$1'), s);
      }),
    );
  });

  it('builds the media pipeline with masks before the tee, GOP and segment length in the launch line', () => {
    const c = mediaConfigSchema.parse({
      width: 320,
      height: 240,
      fps: 15,
      masks: [{ x: 0.5, y: 0, w: 0.5, h: 0.25 }],
    });
    const launch = toLaunchString(
      buildMediaGraph(c, {
        encoder: 'x264enc',
        segmentLocation: '/dev/shm/r/r1-%05d.ts',
        maskImage: '/dev/shm/r/mask.png',
        sinks: 'app',
      }),
    );
    assert.match(
      launch,
      /gdkpixbufoverlay location="\/dev\/shm\/r\/mask.png" positioning-mode=pixels-absolute offset-x=160 offset-y=0 overlay-width=160 overlay-height=60 alpha=1 ! tee name=t/,
    );
    // One input per mask element: no second stream (a compositor's) that could be late.
    assert.doesNotMatch(launch, /compositor|videotestsrc pattern=black/);
    assert.match(launch, /key-int-max=15/);
    assert.match(launch, /max-size-time=1000000000/);
    assert.match(launch, /appsink name=motion/);
    // The real parser accepts it.
    new gst.Pipeline(launch);
    assert.deepEqual(maskPixels({ x: 0.1, y: 0.1, w: 0.1, h: 0.1 }, 100, 100), {
      x: 10,
      y: 10,
      w: 10,
      h: 10,
    });
    assert.deepEqual(maskPixels({ x: 0.333, y: 0, w: 0.333, h: 1 }, 320, 240), {
      x: 106,
      y: 0,
      w: 108,
      h: 240,
    });
    assert.match(
      toLaunchArgv(clipAssemblyGraph('/dev/shm/a b/x.tmp')).join(' '),
      /faststart-file=\/dev\/shm\/a b/,
    );
  });

  it('config: GOP longer than a segment is refused', () => {
    assert.throws(() => mediaConfigSchema.parse({ fps: 30, segmentS: 1, gop: 60 }), /longer than a segment/);
    assert.throws(
      () => mediaConfigSchema.parse({ masks: [{ x: 0.8, y: 0, w: 0.5, h: 0.1 }] }),
      /inside the frame/,
    );
    assert.equal(mediaConfigSchema.parse({}).prerollS, 5);
    assert.equal(mediaConfigSchema.parse({}).postrollS, 10);
  });

  it('preflight: a missing element or encoder is a MediaConfigError naming it', async () => {
    const c = mediaConfigSchema.parse({});
    const has = (set: string[]) => async (e: string) => set.includes(e);
    assert.equal(await chooseEncoder(c, has(['x264enc', 'openh264enc'])), 'x264enc');
    assert.equal(await chooseEncoder(c, has(['v4l2h264enc', 'x264enc'])), 'v4l2h264enc');
    await assert.rejects(chooseEncoder(c, has([])), MediaConfigError);
    await assert.rejects(
      chooseEncoder(mediaConfigSchema.parse({ encoder: 'openh264enc' }), has(['x264enc'])),
      /openh264enc" is not installed/,
    );
    const g = buildMediaGraph(c, {
      encoder: 'x264enc',
      segmentLocation: '/tmp/x-%05d.ts',
      maskImage: '/tmp/mask.png',
      sinks: 'app',
    });
    await assert.rejects(
      checkElements(g, async (e) => e !== 'splitmuxsink' && e !== 'jpegenc'),
      /not installed: jpegenc, splitmuxsink/,
    );
    assert.match(
      explainPipelineError('src', 'Internal data stream error: not-negotiated'),
      /caps not negotiated at src/,
    );
  });
});
