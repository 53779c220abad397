import { z } from 'zod';
import { RECIPIENT_FINGERPRINT } from './age-recipient.js';
import { ITEM_ID_PATTERN } from './footage.js';

/**
 * An item's sealed metadata: what a stored clip or snapshot is, kept out of
 * the device's plaintext. The device writes this record, as UTF-8 JSON
 * encrypted with age to the item's recipients, next to the item
 * (`StoredItem.meta` on the wire); only an owner's identity opens it, and the
 * owner's side checks it with `parseItemMeta`. `id` and `sha256` bind it to
 * its item, so metadata cannot be moved from one item to another.
 */

/** The largest sealed record a device sends or a hub accepts (a record is under 1 KiB, age adds about 200 bytes per recipient). */
export const MAX_SEALED_META_BYTES = 8 * 1024;
const MAX_META_JSON_BYTES = 4 * 1024;

export const META_REASON_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
const ms = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const itemMetaSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(ITEM_ID_PATTERN),
    kind: z.enum(['clip', 'snapshot']),
    /** The first trigger: "press", "motion" (clips) or "snapshot". */
    reason: z.string().regex(META_REASON_PATTERN),
    /** Every trigger merged into a clip, in order. */
    reasons: z.array(z.string().regex(META_REASON_PATTERN)).max(64),
    /** The first frame and past the last frame, and the first trigger, Unix ms. */
    startMs: ms,
    endMs: ms,
    triggerMs: ms,
    truncated: z.boolean(),
    /** SHA-256 (hex) of the item's encrypted file. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** Fingerprints of the recipients (proto/age-recipient.ts). */
    recipients: z.array(z.string().regex(RECIPIENT_FINGERPRINT)).max(32),
  })
  .strict()
  .refine((m) => m.startMs <= m.endMs, { message: 'startMs must be <= endMs', path: ['endMs'] });

export type ItemMeta = z.infer<typeof itemMetaSchema>;

export class ItemMetaError extends Error {
  override readonly name = 'ItemMetaError';
}

export function serializeItemMeta(m: ItemMeta): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(itemMetaSchema.parse(m)));
}

/**
 * Parses a decrypted record and checks it belongs to the item `id` whose
 * encrypted file hashes to `sha256` (hex). Any input gives an ItemMeta or an
 * ItemMetaError, never anything else.
 */
export function parseItemMeta(bytes: Uint8Array, item: { id: string; sha256: string }): ItemMeta {
  if (bytes.length > MAX_META_JSON_BYTES) throw new ItemMetaError('metadata record is too large');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new ItemMetaError('metadata record is not UTF-8 JSON');
  }
  const r = itemMetaSchema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new ItemMetaError(
      `metadata record is invalid at ${first?.path.join('.') || '?'}: ${first?.message ?? ''}`,
    );
  }
  if (r.data.id !== item.id)
    throw new ItemMetaError(`metadata record names item ${r.data.id}, not ${item.id}`);
  if (r.data.sha256 !== item.sha256)
    throw new ItemMetaError(`metadata record is for another file than item ${item.id}`);
  return r.data;
}
