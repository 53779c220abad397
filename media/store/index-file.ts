import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ITEM_ID_PATTERN } from '../../proto/footage.js';
import { META_REASON_PATTERN } from '../../proto/item-meta.js';

/** More recipients than anyone configures; bounds an index entry. */
export const MAX_RECIPIENTS = 32;

/** Item ids (proto/footage.ts): a sequence number, not a time; sorting them sorts items in the order they were stored. */
export const ID_PATTERN = ITEM_ID_PATTERN;

export function newId(seq: number): string {
  return `${Math.max(0, Math.floor(seq)).toString().padStart(13, '0')}-${randomBytes(6).toString('hex')}`;
}

export function idSeq(id: string): number {
  return Number(id.slice(0, 13));
}

export const REASON_PATTERN = META_REASON_PATTERN;

const ms = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const itemKindSchema = z.enum(['clip', 'snapshot']);
export type ItemKind = z.infer<typeof itemKindSchema>;

/**
 * What the store keeps in plaintext of an item: what retention needs and no more
 * (docs/security.md, "What the card shows"). Kind, trigger and times are in the
 * item's sealed metadata file.
 */
export const indexEntrySchema = z
  .object({
    id: z.string().regex(ID_PATTERN),
    /** The start of the period (a UTC day by default) the item was stored in: retention's only clock. */
    storedBucketMs: ms,
    /** Size of the stored (encrypted) file. */
    bytes: ms,
    /** SHA-256 of the stored (encrypted) file, hex. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

export type IndexEntry = z.infer<typeof indexEntrySchema>;

export const MAX_INDEX_BYTES = 8 * 1024 * 1024;
export const MAX_INDEX_ENTRIES = 100_000;

const indexSchema = z
  .object({
    version: z.literal(2),
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
  return new TextEncoder().encode(`${JSON.stringify({ version: 2, entries })}\n`);
}

/** File name of a stored item's ciphertext: `<id>_<storedBucketMs>.age`. */
export function fileName(e: Pick<IndexEntry, 'id' | 'storedBucketMs'>): string {
  return `${e.id}_${e.storedBucketMs}.age`;
}

/** File name of its sealed metadata (proto/item-meta.ts): `<id>_<storedBucketMs>.meta.age`. */
export function metaFileName(e: Pick<IndexEntry, 'id' | 'storedBucketMs'>): string {
  return `${e.id}_${e.storedBucketMs}.meta.age`;
}

const FILE_PATTERN = /^(\d{13}-[0-9a-f]{12})_(0|[1-9]\d{0,15})(\.meta)?\.age$/;

/** Parses a file name of either kind; undefined for any other name. */
export function parseFileName(
  name: string,
): { id: string; storedBucketMs: number; meta: boolean } | undefined {
  const m = FILE_PATTERN.exec(name);
  if (m === null) return undefined;
  const storedBucketMs = Number(m[2]);
  if (!Number.isSafeInteger(storedBucketMs)) return undefined;
  return { id: m[1] as string, storedBucketMs, meta: m[3] !== undefined };
}

/** What an earlier version put in a file name (`<id>_<kind>_<reason>_<start>_<end>_<trigger>.age`, id a time). */
export interface LegacyFile {
  name: string;
  id: string;
  kind: ItemKind;
  reason: string;
  startMs: number;
  endMs: number;
  triggerMs: number;
}

const LEGACY_PATTERN =
  /^(\d{13}-[0-9a-f]{12})_(clip|snapshot)_([a-z0-9][a-z0-9-]{0,31})_(0|[1-9]\d{0,15})_(0|[1-9]\d{0,15})_(0|[1-9]\d{0,15})\.age$/;

/** Parses the file name of an earlier version, which carried the metadata in plaintext. */
export function parseLegacyFileName(name: string): LegacyFile | undefined {
  const m = LEGACY_PATTERN.exec(name);
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
  return { name, id, kind, reason, startMs, endMs, triggerMs };
}
