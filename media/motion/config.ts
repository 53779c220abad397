import { z } from 'zod';

/** A normalised coordinate: 0 is the left/top edge of the frame, 1 the right/bottom edge. */
const unit = z.number().min(0).max(1);

const zoneName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,31}$/, 'letters, digits, space, _ . -, 1-32 long');

/** A rectangle in normalised coordinates: top-left corner (x, y), width w and height h. */
export const rectZoneSchema = z
  .object({
    name: zoneName,
    kind: z.literal('rect'),
    x: unit,
    y: unit,
    w: unit.refine((v) => v > 0, 'must be > 0'),
    h: unit.refine((v) => v > 0, 'must be > 0'),
  })
  .strict()
  .refine((r) => r.x + r.w <= 1 + 1e-9, { message: 'x + w must be <= 1', path: ['w'] })
  .refine((r) => r.y + r.h <= 1 + 1e-9, { message: 'y + h must be <= 1', path: ['h'] });

/** A simple polygon (3-64 vertices) in normalised coordinates; even-odd fill. */
export const polygonZoneSchema = z
  .object({
    name: zoneName,
    kind: z.literal('polygon'),
    points: z
      .array(z.tuple([unit, unit]))
      .min(3)
      .max(64),
  })
  .strict();

export const motionZoneSchema = z.discriminatedUnion('kind', [rectZoneSchema, polygonZoneSchema]);

export type MotionZone = z.infer<typeof motionZoneSchema>;

export const WHOLE_FRAME_ZONE: MotionZone = { name: 'frame', kind: 'rect', x: 0, y: 0, w: 1, h: 1 };

/** Hard caps, whatever the config says: the detector refuses bigger frames. */
export const MAX_FRAME_SIDE = 4096;
export const MAX_ZONES = 16;

/**
 * Motion detection settings. Nest it into the daemon config as
 * `motion: motionConfigSchema.prefault({})`.
 */
export const motionConfigSchema = z
  .object({
    /** Named zones; motion is judged per zone. Default: one zone covering the whole frame. */
    zones: z
      .array(motionZoneSchema)
      .min(1)
      .max(MAX_ZONES)
      .default([WHOLE_FRAME_ZONE])
      .refine((zs) => new Set(zs.map((z) => z.name)).size === zs.length, 'zone names must be unique'),
    /**
     * Per-pixel threshold: a pixel has changed when its (blurred) grey level differs from the
     * background by more than this many levels (0-255). Lower is more sensitive.
     */
    sensitivity: z.number().int().min(1).max(254).default(25),
    /** Fraction of a zone's pixels that must change for a frame to count as "motion" in it. */
    minArea: z.number().gt(0).max(1).default(0.01),
    /** Consecutive motion frames needed to start an event (hysteresis). */
    startFrames: z.number().int().min(1).max(100).default(2),
    /** Consecutive quiet frames needed to end an event (hysteresis). */
    stopFrames: z.number().int().min(1).max(1_000).default(5),
    /** After a motion-end, no new motion-start in that zone for this long. */
    cooldownMs: z.number().int().min(0).max(3_600_000).default(5_000),
    /**
     * Weight of the newest frame in the running-average background (0 < a <= 1). 1 compares each
     * frame with the previous one; smaller values average sensor noise out over ~1/a frames.
     */
    backgroundAlpha: z.number().gt(0).max(1).default(0.2),
    /** 3x3 box blur before comparing: divides uncorrelated per-pixel noise by 3. */
    blur: z.boolean().default(true),
    /** Frames with more pixels than this are refused (frame-too-large). */
    maxPixels: z
      .number()
      .int()
      .min(1)
      .max(MAX_FRAME_SIDE * MAX_FRAME_SIDE)
      .default(640 * 480),
  })
  .strict();

export type MotionConfig = z.infer<typeof motionConfigSchema>;
export type MotionConfigInput = z.input<typeof motionConfigSchema>;
