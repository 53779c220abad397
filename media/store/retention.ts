/** The store's plaintext clock (docs/security.md, "What the card shows"): a UTC day. */
export const DAY_MS = 86_400_000;

export interface RetentionItem {
  /** Sequence-numbered id (see `newId`): the oldest item has the smallest id. */
  id: string;
  bytes: number;
  /** The start of the period the item was stored in (see `storeBucket`). */
  storedBucketMs: number;
}

export interface RetentionPolicy {
  nowMs: number;
  maxAgeMs: number;
  /** The length of a store period (`storeBucket`). */
  bucketMs: number;
  maxTotalBytes: number;
  /** Free at least this many bytes (a full disk), evicting at least one item when > 0. */
  freeBytes?: number;
  /** Never evict these (the item being committed). */
  keep?: ReadonlySet<string>;
}

export interface RetentionPlan {
  /** Ids to delete, oldest first. */
  evict: { id: string; bytes: number; why: 'age' | 'size' | 'space' }[];
  remainingBytes: number;
}

/**
 * The period an item stored at `nowMs` is filed under: the start of its UTC day
 * (or of a shorter period when the retention is shorter than a day). The store
 * keeps only this of the time, so its plaintext tells the day, not the minute.
 */
export function storeBucket(nowMs: number, bucketMs: number): number {
  return Math.max(0, Math.floor(nowMs / bucketMs) * bucketMs);
}

/** The length of a store period for a retention of `maxAgeMs`: a day, or the retention if shorter. */
export function bucketLength(maxAgeMs: number): number {
  return Math.max(1, Math.min(DAY_MS, maxAgeMs));
}

/** When retention deletes an item at the latest: the end of its period plus `maxAgeMs`. */
export function expiresAt(
  storedBucketMs: number,
  policy: Pick<RetentionPolicy, 'maxAgeMs' | 'bucketMs'>,
): number {
  return storedBucketMs + policy.bucketMs + policy.maxAgeMs;
}

/**
 * Decides what to delete: every item at least `maxAgeMs` past the end of the period it was stored
 * in (so kept at least `maxAgeMs`, at most a period longer), then the oldest until the rest fit in
 * `maxTotalBytes` and `freeBytes` have been freed. Pure; `items` may be in any order.
 */
export function planRetention(items: readonly RetentionItem[], policy: RetentionPolicy): RetentionPlan {
  const sorted = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let total = 0;
  for (const it of sorted) total += it.bytes;
  const evict: RetentionPlan['evict'] = [];
  const gone = new Set<string>();
  const drop = (it: RetentionItem, why: 'age' | 'size' | 'space') => {
    evict.push({ id: it.id, bytes: it.bytes, why });
    gone.add(it.id);
    total -= it.bytes;
  };
  // Age first, whatever the order: a clock set back can file a later item under an earlier period.
  for (const it of sorted) {
    if (!policy.keep?.has(it.id) && policy.nowMs > expiresAt(it.storedBucketMs, policy)) drop(it, 'age');
  }
  let freed = evict.reduce((n, e) => n + e.bytes, 0);
  const need = policy.freeBytes ?? 0;
  for (const it of sorted) {
    if (policy.keep?.has(it.id) || gone.has(it.id)) continue;
    let why: 'size' | 'space' | undefined;
    if (total > policy.maxTotalBytes) why = 'size';
    else if (need > 0 && (freed < need || evict.length === 0)) why = 'space';
    if (why === undefined) break;
    drop(it, why);
    freed += it.bytes;
  }
  evict.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { evict, remainingBytes: total };
}
