import { idTimeMs } from './index-file.js';

export interface RetentionItem {
  /** Time-sortable id (see `newId`): the oldest item has the smallest id. */
  id: string;
  bytes: number;
}

export interface RetentionPolicy {
  nowMs: number;
  maxAgeMs: number;
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
 * Decides what to delete: every item older than `maxAgeMs`, then the oldest until the rest fit in
 * `maxTotalBytes` and `freeBytes` have been freed. Pure; `items` may be in any order.
 */
export function planRetention(items: readonly RetentionItem[], policy: RetentionPolicy): RetentionPlan {
  const sorted = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let total = 0;
  for (const it of sorted) total += it.bytes;
  const evict: RetentionPlan['evict'] = [];
  let freed = 0;
  const need = policy.freeBytes ?? 0;
  for (const it of sorted) {
    if (policy.keep?.has(it.id)) continue;
    let why: 'age' | 'size' | 'space' | undefined;
    if (policy.nowMs - idTimeMs(it.id) > policy.maxAgeMs) why = 'age';
    else if (total > policy.maxTotalBytes) why = 'size';
    else if (need > 0 && (freed < need || evict.length === 0)) why = 'space';
    if (why === undefined) break;
    evict.push({ id: it.id, bytes: it.bytes, why });
    total -= it.bytes;
    freed += it.bytes;
  }
  return { evict, remainingBytes: total };
}
