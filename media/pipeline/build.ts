import { effectiveGop, type Mask, type MediaConfig } from '../config.js';
import { type Chain, caps, type ElementSpec, el, type LaunchGraph, ref, word } from './launch.js';

/** Element names the worker looks up in the built pipeline. */
export const NAMES = {
  source: 'src',
  /** The sim camera's light (videobalance after the test source): a rig's lamp brightens the scene. */
  light: 'light',
  tee: 't',
  ring: 'ring',
  motion: 'motion',
  snapshot: 'snapshot',
} as const;

export type EncoderFactory = 'v4l2h264enc' | 'x264enc' | 'openh264enc';

export interface BuildOptions {
  encoder: EncoderFactory;
  /** splitmuxsink location pattern, e.g. `/dev/shm/ring/r3-%05d.ts`. */
  segmentLocation: string;
  /** `app`: appsinks for the worker; `fake`: fakesinks (the benchmark's plain gst-launch baseline). */
  sinks: 'app' | 'fake';
  /** The black pixel PNG (mask-image.ts) each privacy mask scales over its rectangle. */
  maskImage: string;
}

const fps = (n: number) => ({ num: n, den: 1 });

/** The width the moving test ball is drawn at before it is scaled to the configured size. */
export const BALL_WIDTH = 320;

/**
 * videotestsrc draws its ball with a fixed 20-pixel radius, so at 720p it covers
 * 0.1 % of the picture and the motion detector's default `minArea` (1 %) never
 * sees it move. Drawn at 320 pixels wide and scaled up, it fills the same share
 * of the picture at any resolution, and the demo's motion shows with defaults.
 */
function ballScale(c: MediaConfig): Chain {
  if (c.source.kind !== 'test' || c.source.pattern !== 'ball' || c.width <= BALL_WIDTH) return [];
  const height = Math.max(2, Math.round((BALL_WIDTH * c.height) / c.width / 2) * 2);
  return [caps('video/x-raw', { width: BALL_WIDTH, height })];
}

function sourceChain(c: MediaConfig): Chain {
  const s = c.source;
  switch (s.kind) {
    case 'test':
      // videobalance is a passthrough at its defaults; the worker raises its brightness
      // while the sim board's light (a rig's lamp) is on.
      return [
        el('videotestsrc', { 'is-live': true, pattern: word(s.pattern) }, NAMES.source),
        ...ballScale(c),
        el('videobalance', {}, NAMES.light),
      ];
    case 'file':
      // multifilesrc re-reads the file forever; MPEG-TS concatenates cleanly and
      // tsdemux keeps the timestamps monotonic across the loop. clocksync paces it.
      return [
        el('multifilesrc', { location: s.path, loop: true }, NAMES.source),
        el('decodebin'),
        el('videoconvert'),
        el('clocksync'),
      ];
    case 'v4l2':
      return [el('v4l2src', { device: s.device }, NAMES.source)];
    case 'libcamera':
      return [
        el('libcamerasrc', s.cameraName === undefined ? {} : { 'camera-name': s.cameraName }, NAMES.source),
      ];
  }
}

/** Pixel rectangle of a normalised mask, rounded outwards so the mask never shrinks. */
export function maskPixels(m: Mask, width: number, height: number) {
  const x0 = Math.max(0, Math.floor(m.x * width));
  const y0 = Math.max(0, Math.floor(m.y * height));
  const x1 = Math.min(width, Math.ceil((m.x + m.w) * width));
  const y1 = Math.min(height, Math.ceil((m.y + m.h) * height));
  return { x: x0, y: y0, w: Math.max(1, x1 - x0), h: Math.max(1, y1 - y0) };
}

function encoder(c: MediaConfig, factory: EncoderFactory): Chain {
  const gop = effectiveGop(c);
  switch (factory) {
    case 'x264enc':
      return [
        el('x264enc', {
          tune: word('zerolatency'),
          'speed-preset': word('ultrafast'),
          bitrate: c.bitrateKbps,
          'key-int-max': gop,
        }),
        // Constrained Baseline, which ultrafast produces anyway (no CABAC, no B-frames):
        // the profile every browser, phone and MSE player decodes.
        caps('video/x-h264', { profile: { word: 'constrained-baseline' } }),
      ];
    case 'openh264enc':
      return [el('openh264enc', { bitrate: c.bitrateKbps * 1000, 'gop-size': gop })];
    case 'v4l2h264enc':
      return [
        el('v4l2h264enc', {
          'extra-controls': `controls,video_bitrate=${c.bitrateKbps * 1000},h264_i_frame_period=${gop}`,
        }),
      ];
  }
}

function sink(kind: BuildOptions['sinks'], name: string, maxBuffers: number): ElementSpec {
  return kind === 'app'
    ? el('appsink', { 'max-buffers': maxBuffers, drop: true, sync: false }, name)
    : el('fakesink', { sync: false }, name);
}

/**
 * The privacy masks: one `gdkpixbufoverlay` per mask, each blending an opaque
 * black image over its rectangle into every buffer that passes, in place.
 * Fail-closed by construction: the element has one input, so there is no
 * frame it can let through without drawing (no second stream that can be late,
 * as a compositor's mask input can); it loads its image when the pipeline
 * starts and stops the pipeline with an error when it cannot; and the overlay
 * is blended into the pixels (never attached as metadata that an encoder
 * could ignore). Rectangles are rounded outwards (maskPixels).
 */
export function maskChain(c: Pick<MediaConfig, 'masks' | 'width' | 'height'>, maskImage: string): Chain {
  return c.masks.map((m) => {
    const p = maskPixels(m, c.width, c.height);
    return el('gdkpixbufoverlay', {
      location: maskImage,
      'positioning-mode': word('pixels-absolute'),
      'offset-x': p.x,
      'offset-y': p.y,
      'overlay-width': p.w,
      'overlay-height': p.h,
      alpha: 1,
    });
  });
}

/**
 * The one media pipeline:
 * source -> scale/rate -> [privacy mask] -> tee -> (a) H.264 -> splitmuxsink ring,
 * (b) GRAY8 low-res few fps -> appsink `motion`, (c) JPEG few fps -> appsink `snapshot`.
 */
export function buildMediaGraph(c: MediaConfig, o: BuildOptions): LaunchGraph {
  const frame = caps('video/x-raw', {
    format: { word: 'I420' },
    width: c.width,
    height: c.height,
    framerate: fps(c.fps),
    'pixel-aspect-ratio': { num: 1, den: 1 },
  });
  const graph: Chain[] = [];
  const normalise: Chain = [el('videoconvert'), el('videoscale'), el('videorate'), frame];
  // The masks are drawn into each frame before the tee: every branch sees the masked image.
  graph.push([...sourceChain(c), ...normalise, ...maskChain(c, o.maskImage), el('tee', {}, NAMES.tee)]);
  const segmentNs = Math.round(c.segmentS * 1e9);
  graph.push([
    ref(NAMES.tee),
    el('queue'),
    ...encoder(c, o.encoder),
    el('h264parse'),
    el(
      'splitmuxsink',
      {
        'muxer-factory': 'mpegtsmux',
        'max-size-time': segmentNs,
        'max-size-bytes': 0,
        'send-keyframe-requests': true,
        location: o.segmentLocation,
      },
      NAMES.ring,
    ),
  ]);
  graph.push([
    ref(NAMES.tee),
    el('queue', { leaky: word('downstream'), 'max-size-buffers': 3 }),
    el('videorate', { 'drop-only': true }),
    caps('video/x-raw', { framerate: fps(c.motion.fps) }),
    el('videoscale'),
    el('videoconvert'),
    caps('video/x-raw', {
      format: { word: 'GRAY8' },
      width: c.motion.width,
      height: c.motion.height,
      'pixel-aspect-ratio': { num: 1, den: 1 },
    }),
    sink(o.sinks, NAMES.motion, 2),
  ]);
  graph.push([
    ref(NAMES.tee),
    el('queue', { leaky: word('downstream'), 'max-size-buffers': 3 }),
    el('videorate', { 'drop-only': true }),
    caps('video/x-raw', { framerate: fps(c.snapshot.fps) }),
    el('jpegenc', { quality: c.snapshot.quality }),
    sink(o.sinks, NAMES.snapshot, 1),
  ]);
  return graph;
}

/**
 * Remux a run of concatenated MPEG-TS segments (stdin) into one MP4 with the
 * moov first (stdout). `faststartFile` is mp4mux's scratch file: it must be in
 * the RAM ring, never on persistent storage (it holds plaintext).
 */
export function clipAssemblyGraph(faststartFile: string): LaunchGraph {
  return [
    [
      el('fdsrc', { fd: 0 }),
      el('tsdemux'),
      el('h264parse'),
      el('mp4mux', { faststart: true, 'faststart-file': faststartFile }),
      el('fdsink', { fd: 1, sync: false }),
    ],
  ];
}
