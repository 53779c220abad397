import { z } from 'zod';

/**
 * Media configuration. `mediaConfigSchema` is meant to be nested in the daemon
 * config (e.g. `media: mediaConfigSchema.optional()`); every field has a default,
 * so `mediaConfigSchema.parse({})` is a working sim camera.
 */

const unit = z.number().min(0).max(1);

/** A privacy mask: a black rectangle in normalised coordinates (0..1, origin top left). */
export const maskSchema = z
  .object({ x: unit, y: unit, w: unit.positive(), h: unit.positive() })
  .strict()
  .refine((m) => m.x + m.w <= 1 + 1e-9 && m.y + m.h <= 1 + 1e-9, {
    message: 'mask must lie inside the frame (x + w <= 1, y + h <= 1)',
  });
export type Mask = z.infer<typeof maskSchema>;

const pathString = z
  .string()
  .min(1)
  .max(1024)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is the point
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'path holds a control character');

export const sourceSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('test'),
      /** videotestsrc pattern; `ball` moves (drawn 320 px wide, then scaled: motion at any size), `black`/`smpte` are static. */
      pattern: z.enum(['ball', 'smpte', 'black', 'white', 'snow', 'gradient']).default('ball'),
    })
    .strict(),
  z
    .object({
      kind: z.literal('file'),
      /** A stream that can be concatenated with itself (MPEG-TS): it is looped with multifilesrc. */
      path: pathString,
    })
    .strict(),
  z.object({ kind: z.literal('v4l2'), device: pathString.default('/dev/video0') }).strict(),
  z.object({ kind: z.literal('libcamera'), cameraName: z.string().min(1).max(256).optional() }).strict(),
]);
export type SourceConfig = z.infer<typeof sourceSchema>;

export const encoderSchema = z.enum(['auto', 'v4l2h264enc', 'x264enc', 'openh264enc']);
export type EncoderChoice = z.infer<typeof encoderSchema>;

export const mediaConfigSchema = z
  .object({
    source: sourceSchema.default({ kind: 'test', pattern: 'ball' }),
    width: z.number().int().min(64).max(3840).multipleOf(2).default(1280),
    height: z.number().int().min(48).max(2160).multipleOf(2).default(720),
    fps: z.number().int().min(1).max(60).default(30),
    encoder: encoderSchema.default('auto'),
    /** H.264 bit rate in kbit/s. */
    bitrateKbps: z.number().int().min(64).max(50_000).default(2000),
    /** Keyframe interval in frames; defaults to one segment. Must not exceed one segment. */
    gop: z.number().int().min(1).max(600).optional(),
    /** Segment length in the ring, seconds (a clip's duration is exact to within one segment). */
    segmentS: z.number().min(0.5).max(2).default(1),
    prerollS: z.number().min(0).max(30).default(5),
    postrollS: z.number().min(0).max(120).default(10),
    /** Triggers keep extending a clip up to this length; the next trigger starts a new clip. */
    maxClipS: z.number().min(5).max(600).default(120),
    /** Where the segment ring lives; a tmpfs (RAM), since it holds plaintext video. */
    ringDir: pathString.default('/dev/shm/doorbell-ring'),
    /**
     * Accept a ringDir that is not in RAM (tmpfs/ramfs). Off by default: the ring
     * holds plaintext video, which must never reach the SD card.
     */
    ringOnPersistentStorage: z.boolean().default(false),
    masks: z.array(maskSchema).max(16).default([]),
    /** The grayscale branch for motion analysis. */
    motion: z
      .object({
        width: z.number().int().min(16).max(640).multipleOf(2).default(160),
        height: z.number().int().min(16).max(480).multipleOf(2).default(120),
        fps: z.number().int().min(1).max(15).default(5),
      })
      .strict()
      .default({ width: 160, height: 120, fps: 5 }),
    snapshot: z
      .object({
        /** Snapshots per second; 2 keeps the latest one under 1 s old. */
        fps: z.number().int().min(1).max(5).default(2),
        quality: z.number().int().min(10).max(100).default(80),
      })
      .strict()
      .default({ fps: 2, quality: 80 }),
  })
  .strict()
  .superRefine((c, ctx) => {
    const segFrames = Math.floor(c.segmentS * c.fps);
    if (segFrames < 1) {
      ctx.addIssue({ code: 'custom', path: ['segmentS'], message: 'a segment must hold at least one frame' });
    }
    if (c.gop !== undefined && c.gop > segFrames) {
      ctx.addIssue({
        code: 'custom',
        path: ['gop'],
        message: `gop ${c.gop} is longer than a segment (${segFrames} frames at ${c.fps} fps); splitmuxsink cuts only at keyframes`,
      });
    }
  });
export type MediaConfig = z.infer<typeof mediaConfigSchema>;

/** The GOP actually used: the configured one, or exactly one segment. */
export function effectiveGop(c: MediaConfig): number {
  return c.gop ?? Math.max(1, Math.floor(c.segmentS * c.fps));
}
