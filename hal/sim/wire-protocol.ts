/**
 * The sim wire-socket protocol: newline-delimited JSON over a local Unix
 * socket, each line at most 4096 bytes. See hal/README.md for the summary.
 *
 * Timestamps (`atNs`) are decimal strings of `process.hrtime.bigint()` in the
 * server process. On Linux that is CLOCK_MONOTONIC, shared by every process on
 * the machine, so a client can compare them with its own hrtime readings.
 */
import { z } from 'zod';
import { MAX_EDGES, MAX_MS } from './edge-patterns.js';

export const MAX_LINE_BYTES = 4096;

const id = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const ms = z.number().min(0).max(MAX_MS);
const edges = z.int().min(0).max(MAX_EDGES);

export const wireRequestSchema = z.discriminatedUnion('op', [
  z.strictObject({ id, op: z.literal('press'), ms, releasedMs: ms.optional() }),
  z.strictObject({ id, op: z.literal('hold'), ms }),
  z.strictObject({ id, op: z.literal('bounce'), edges, spacingMs: ms, settleMs: ms.optional() }),
  z.strictObject({ id, op: z.literal('noise'), edges, spacingMs: ms }),
  z.strictObject({ id, op: z.literal('light'), on: z.boolean() }),
  z.strictObject({ id, op: z.literal('state') }),
  z.strictObject({ id, op: z.literal('watch') }),
  z.strictObject({ id, op: z.literal('chime-history'), from: z.int().min(0).max(Number.MAX_SAFE_INTEGER) }),
]);

/** Chime changes per `chime-history` reply: keeps each reply line well under 4 KiB. */
export const HISTORY_PAGE = 40;

export interface WireHistoryPage {
  first: number;
  next: number;
  changes: Array<{ on: boolean; atNs: string }>;
}

export type WireRequest = z.infer<typeof wireRequestSchema>;
export type WireOp = WireRequest['op'];
/** A request as a client writes it: the id is added by the client. */
export type WireRequestBody = WireRequest extends infer R
  ? R extends WireRequest
    ? Omit<R, 'id'>
    : never
  : never;

export interface WireState {
  button: boolean;
  chime: boolean;
  led: boolean;
  /** The light in front of the camera (a rig's lamp). */
  light: boolean;
}

export type WireErrorKind = 'bad-request' | 'failed';

export type WireReply =
  | { id: number; ok: true; state?: WireState; history?: WireHistoryPage }
  | { id: number | null; ok: false; error: { kind: WireErrorKind; message: string } };

export interface WireEvent {
  ev: 'chime' | 'led';
  on: boolean;
  /** Decimal `process.hrtime.bigint()` of the change, in the server process. */
  atNs: string;
}

export const wireReplySchema = z.union([
  z.object({
    id,
    ok: z.literal(true),
    state: z
      .object({ button: z.boolean(), chime: z.boolean(), led: z.boolean(), light: z.boolean() })
      .optional(),
    history: z
      .object({
        first: z.int().min(0),
        next: z.int().min(0),
        changes: z
          .array(z.object({ on: z.boolean(), atNs: z.string().regex(/^\d{1,30}$/) }))
          .max(HISTORY_PAGE),
      })
      .optional(),
  }),
  z.object({
    id: id.nullable(),
    ok: z.literal(false),
    error: z.object({ kind: z.enum(['bad-request', 'failed']), message: z.string() }),
  }),
]);

export const wireEventSchema = z.object({
  ev: z.enum(['chime', 'led']),
  on: z.boolean(),
  atNs: z.string().regex(/^\d{1,30}$/),
});

/** Serialises one protocol message as a line. */
export function encodeLine(message: WireReply | WireEvent | WireRequest): string {
  return `${JSON.stringify(message)}\n`;
}

/**
 * Parses and validates one request line. On failure returns a bad-request
 * reply, carrying the request's id when one could be read.
 */
export function decodeRequest(line: string): WireRequest | WireReply {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return badRequest(null, 'not JSON');
  }
  const parsed = wireRequestSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const maybeId = id.safeParse((value as { id?: unknown } | null)?.id);
  const problems = parsed.error.issues
    .map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`)
    .join('; ');
  return badRequest(maybeId.success ? maybeId.data : null, problems.slice(0, 500));
}

function badRequest(requestId: number | null, message: string): WireReply {
  return { id: requestId, ok: false, error: { kind: 'bad-request', message } };
}
