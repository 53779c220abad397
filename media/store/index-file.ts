import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { RECIPIENT_FINGERPRINT } from '../../proto/age-recipient.js';
import { ITEM_ID_PATTERN } from '../../proto/footage.js';

/** More recipients than anyone configures; bounds an index entry. */
export const MAX_RECIPIENTS = 32;

/** Item ids (proto/footage.ts): sorting them sorts items by the time they were stored. */
export const ID_PATTERN = ITEM_ID_PATTERN;

export function newId(nowMs: number): string {
  return `${Math.max(0, Math.floor(nowMs)).toString().padStart(13, '0')}-${randomBytes(6).toString('hex')}`;
}

export function idTimeMs(id: string): number {
  return Number(id.slice(0, 13));
}

export const REASON_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;

const ms = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const itemKindSchema = z.enum(['clip', 'snapshot']);
export type ItemKind = z.infer<typeof itemKindSchema>;

export const indexEntrySchema = z
  .object({
    id: z.string().regex(ID_PATTERN),
    kind: itemKindSchema,
    reason: z.string().regex(REASON_PATTERN),
    startMs: ms,
    endMs: ms,
    triggerMs: ms,
    /** Size of the stored (encrypted) file. */
    bytes: ms,
    /** SHA-256 of the stored (encrypted) file, hex. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /**
     * Fingerprints of the recipients it was encrypted to (proto/age-recipient.ts). Absent
     * for an entry rebuilt from the file name: the age header does not name its recipients.
     */
    recipients: z.array(z.string().regex(RECIPIENT_FINGERPRINT)).max(MAX_RECIPIENTS).optional(),
  })
  .strict()
  .refine((e) => e.startMs <= e.endMs, { message: 'startMs must be <= endMs', path: ['endMs'] });

export type IndexEntry = z.infer<typeof indexEntrySchema>;

export const MAX_INDEX_BYTES = 8 * 1024 * 1024;
export const MAX_INDEX_ENTRIES = 100_000;

const indexSchema = z
  .object({
    version: z.literal(1),
    entries: z
      .array(indexEntrySchema)
      .max(MAX_INDEX_ENTRIES)
      .refine((es) => new Set(es.map((e) => e.id)).size === es.length, 'duplicate ids'),
  })
  .strict();

export type IndexErrorKind = 'too-large' | 'not-json' | 'invalid';

export class IndexError extends Error {
  override readonly name = 'IndexError';
  constructor(
    readonly kind: IndexErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Parses `index.json`. Any input gives either entries sorted by id (oldest first) or an
 * `IndexError`; it never throws anything else.
 */
export function parseIndex(bytes: Uint8Array): IndexEntry[] {
  if (bytes.length > MAX_INDEX_BYTES) {
    throw new IndexError('too-large', `index is larger than ${MAX_INDEX_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new IndexError('not-json', `index is not UTF-8 JSON: ${(e as Error).message}`);
  }
  const r = indexSchema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new IndexError(
      'invalid',
      `index is invalid at ${first?.path.join('.') ?? '?'}: ${first?.message ?? ''}`,
    );
  }
  return [...r.data.entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function serializeIndex(entries: readonly IndexEntry[]): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify({ version: 1, entries })}\n`);
}

/**
 * File name of a stored item. It carries all metadata except size and hash, so the index can be
 * rebuilt from the directory listing (size from stat, hash by reading the file):
 * `<id>_<kind>_<reason>_<startMs>_<endMs>_<triggerMs>.age`.
 */
export function fileName(e: Omit<IndexEntry, 'bytes' | 'sha256' | 'recipients'>): string {
  return `${e.id}_${e.kind}_${e.reason}_${e.startMs}_${e.endMs}_${e.triggerMs}.age`;
}

const FILE_PATTERN =
  /^(\d{13}-[0-9a-f]{12})_(clip|snapshot)_([a-z0-9][a-z0-9-]{0,31})_(0|[1-9]\d{0,15})_(0|[1-9]\d{0,15})_(0|[1-9]\d{0,15})\.age$/;

export function parseFileName(name: string): Omit<IndexEntry, 'bytes' | 'sha256'> | undefined {
  const m = FILE_PATTERN.exec(name);
  if (m === null) return undefined;
  const [, id, kind, reason, s, e, t] = m as unknown as [
    string,
    string,
    ItemKind,
    string,
    string,
    string,
    string,
  ];
  const startMs = Number(s);
  const endMs = Number(e);
  const triggerMs = Number(t);
  if (![startMs, endMs, triggerMs].every(Number.isSafeInteger) || startMs > endMs) return undefined;
  return { id, kind, reason, startMs, endMs, triggerMs };
}
