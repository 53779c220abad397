import { z } from 'zod';
import { mediaConfigSchema } from './config.js';

/**
 * Typed IPC between the control plane and the media worker (child_process.fork
 * channel with `serialization: 'advanced'`, so byte arrays travel as Uint8Array
 * without base64). Every message is validated on receipt with size caps; an invalid
 * message is dropped and counted, never trusted.
 */

export const MAX_STRING = 4096;
/** The largest grayscale frame the motion branch may send (640x480, the config maximum). */
export const MAX_FRAME_BYTES = 640 * 480;
/** The largest JPEG snapshot accepted (a 4K JPEG at quality 100 stays below this). */
export const MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024;

const str = z.string().max(MAX_STRING);
const ms = z.number().finite().nonnegative();
const bytes = (max: number) =>
  z
    .custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected a Uint8Array')
    .refine((b) => b.byteLength <= max, `larger than ${max} bytes`);

export const encoderFactorySchema = z.enum(['v4l2h264enc', 'x264enc', 'openh264enc']);

export const parentMessageSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('start'),
      runId: z.number().int().nonnegative(),
      config: mediaConfigSchema,
      encoder: encoderFactorySchema,
      segmentLocation: str,
      /** The black pixel PNG the privacy masks scale (written by the service before the start). */
      maskImage: str,
      /** The sim camera's light is on (test source only). */
      light: z.boolean().optional(),
    })
    .strict(),
  z.object({ type: z.literal('light'), on: z.boolean() }).strict(),
  z.object({ type: z.literal('stop') }).strict(),
]);
export type ParentMessage = z.infer<typeof parentMessageSchema>;
export type StartMessage = Extract<ParentMessage, { type: 'start' }>;

export const errorKindSchema = z.enum(['camera', 'config', 'pipeline']);
export type ErrorKind = z.infer<typeof errorKindSchema>;

export const workerMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), runId: z.number().int(), launch: z.string().max(65536) }).strict(),
  z.object({ type: z.literal('pipeline-up'), runId: z.number().int() }).strict(),
  z.object({ type: z.literal('segment-opened'), runId: z.number().int(), path: str, startMs: ms }).strict(),
  z.object({ type: z.literal('segment-closed'), runId: z.number().int(), path: str, endMs: ms }).strict(),
  z
    .object({
      type: z.literal('frame'),
      width: z.number().int().positive().max(640),
      height: z.number().int().positive().max(480),
      stride: z.number().int().positive().max(640),
      timestampMs: ms,
      data: bytes(MAX_FRAME_BYTES),
    })
    .strict()
    .refine(
      (f) => f.stride >= f.width && f.data.byteLength === f.stride * f.height,
      'GRAY8 frame must be stride*height bytes',
    ),
  z.object({ type: z.literal('snapshot'), tsMs: ms, data: bytes(MAX_SNAPSHOT_BYTES) }).strict(),
  z
    .object({
      type: z.literal('error'),
      kind: errorKindSchema,
      element: str,
      message: str,
      fatal: z.boolean(),
    })
    .strict(),
]);
export type WorkerMessage = z.infer<typeof workerMessageSchema>;

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

function parseWith<T>(schema: z.ZodType<T>, raw: unknown): ParseResult<T> {
  const r = schema.safeParse(raw);
  if (r.success) return { ok: true, message: r.data };
  return { ok: false, error: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
}

export const parseWorkerMessage = (raw: unknown): ParseResult<WorkerMessage> =>
  parseWith(workerMessageSchema, raw);
export const parseParentMessage = (raw: unknown): ParseResult<ParentMessage> =>
  parseWith(parentMessageSchema, raw);

/** Truncates text for a message field so a long GStreamer error never fails validation. */
export const clip = (s: string): string => (s.length > MAX_STRING ? `${s.slice(0, MAX_STRING - 1)}…` : s);
