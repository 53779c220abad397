import { type Clock, systemClock, type TimerHandle } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import { ITEM_CHUNK_BYTES, MAX_WINDOW_BYTES } from '../../proto/footage.js';
import { doorbell } from '../../proto/index.js';
import { MAX_SEALED_META_BYTES } from '../../proto/item-meta.js';
import type { Commander } from '../commander.js';
import type { EventWatcher, VerifiedEvent } from '../event-watcher.js';
import { type CatalogEntry, type FootageStore, FootageStoreError } from './store.js';

/** The largest chunk a device sends: anything larger is refused. */
export const MAX_CHUNK_BYTES = ITEM_CHUNK_BYTES;
/** The largest window a device sends: fewer round trips (each window is one signed FetchItem). */
export const DEFAULT_WINDOW_BYTES = MAX_WINDOW_BYTES;

export type FetchErrorKind =
  | 'aborted'
  | 'not-found'
  | 'refused'
  | 'stalled'
  | 'hash-mismatch'
  | 'size-mismatch'
  | 'bad-answer';

export class FetchError extends Error {
  override readonly name = 'FetchError';
  constructor(
    readonly kind: FetchErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface FetchOptions {
  commander: Pick<Commander, 'send'>;
  watcher: EventWatcher;
  store: FootageStore;
  deviceId: string;
  itemId: string;
  logger: Logger;
  /** How long the device's answer to one FetchItem may take. */
  commandTimeoutMs?: number;
  /** A window is asked for again from where it stopped when no chunk came for this long. */
  chunkGapMs?: number;
  /** The fetch fails when no byte arrived for this long, whatever was tried (a broker down, a device off). */
  stallTimeoutMs?: number;
  windowBytes?: number;
  /** Command lifetime (the owner key's commands live 10 s at most). */
  ttlMs?: number;
  onProgress?: (received: number, total: number) => void;
  /**
   * Called once the item is known to need a transfer, with its partial file
   * (which then grows with each chunk appended, each followed by onProgress).
   * Not called when the hub's store has the object already.
   */
  onTransfer?: (partialPath: string) => void;
  /** Stops the fetch (Ctrl-C); what arrived stays in the partial file for the next one. */
  signal?: AbortSignal;
  clock?: Clock;
  nowMs?: () => number;
}

export interface Fetched {
  path: string;
  entry: CatalogEntry;
  /** Ciphertext bytes transferred by this fetch (0 when the object was already here). */
  transferred: number;
  /** Where this fetch started (a resumed transfer starts past 0). */
  resumedAt: number;
}

/** Counts of chunks that were not appended, for the log and for tests. */
export interface ChunkRejects {
  foreign: number;
  duplicate: number;
  malformed: number;
}

/**
 * Fetches one stored item's ciphertext from a device into the hub's store.
 * It asks for one window at a time (FetchItem from the offset it has) and
 * appends only the chunk at exactly that offset whose correlation id is the
 * window's, so a replayed, reordered, duplicated or foreign chunk changes
 * nothing. The partial file on disk is the only transfer state: a broker
 * restart, a device restart or the hub's own crash resumes from its length.
 * The whole file's size and SHA-256 are checked against what the device
 * signed (the window's `StoredItem`) before it is kept.
 */
export async function fetchItem(o: FetchOptions): Promise<Fetched & { rejects: ChunkRejects }> {
  const clock = o.clock ?? systemClock;
  const nowMs = o.nowMs ?? Date.now;
  const windowBytes = o.windowBytes ?? DEFAULT_WINDOW_BYTES;
  const gapMs = o.chunkGapMs ?? 5_000;
  const stallMs = o.stallTimeoutMs ?? 30_000;
  const rejects: ChunkRejects = { foreign: 0, duplicate: 0, malformed: 0 };

  const known = await o.store.find(o.deviceId, o.itemId);
  if (known && (await o.store.has(known.sha256))) {
    return {
      path: o.store.objectPath(known.sha256),
      entry: known,
      transferred: 0,
      resumedAt: known.bytes,
      rejects,
    };
  }
  const partial = await o.store.openPartial(o.deviceId, o.itemId);
  const resumedAt = partial.length;
  let item: doorbell.v1.StoredItem | undefined;
  let cid: string | undefined;
  let target = 0;
  let lastProgress = nowMs();
  let wake: (() => void) | undefined;
  let gapTimer: TimerHandle | undefined;

  const armGap = () => {
    if (gapTimer !== undefined) clock.clearTimeout(gapTimer);
    gapTimer = clock.setTimeout(() => wake?.(), gapMs);
  };
  const onEvent = (e: VerifiedEvent) => {
    if (e.channel !== 'data' || e.deviceId !== o.deviceId || e.event.kind !== 'itemChunk') return;
    const c = e.event.itemChunk as doorbell.v1.IItemChunk;
    if (e.correlationId !== cid || c.itemId !== o.itemId) {
      rejects.foreign += 1;
      return;
    }
    const data = c.data ?? new Uint8Array();
    const offset = Number(c.offset ?? 0);
    const limit = item ? Number(item.bytes) : Number.MAX_SAFE_INTEGER;
    if (data.length === 0 || data.length > MAX_CHUNK_BYTES || offset + data.length > limit) {
      rejects.malformed += 1;
      o.logger.warn({ offset, bytes: data.length }, 'chunk refused: empty, oversized or past the end');
      return;
    }
    if (offset !== partial.length || o.signal?.aborted) {
      rejects.duplicate += 1;
      return;
    }
    partial.append(offset, data);
    lastProgress = nowMs();
    if (item) o.onProgress?.(partial.length, Number(item.bytes));
    armGap();
    if (partial.length >= target) wake?.();
  };
  const onAbort = () => wake?.();
  o.signal?.addEventListener('abort', onAbort);
  o.watcher.on('event', onEvent);
  try {
    while (item === undefined || partial.length < Number(item.bytes)) {
      if (o.signal?.aborted) {
        throw new FetchError('aborted', `stopped at ${partial.length} bytes; the next fetch resumes there`);
      }
      if (nowMs() - lastProgress > stallMs) {
        throw new FetchError(
          'stalled',
          `no data from ${o.deviceId} for ${stallMs} ms (at ${partial.length} bytes)`,
        );
      }
      const start = partial.length;
      // The first window is one chunk at most: its answer says whether the object is here already.
      const max = item === undefined ? Math.min(MAX_CHUNK_BYTES, windowBytes) : windowBytes;
      target = start + max;
      const reached = new Promise<void>((resolve) => {
        wake = resolve;
      });
      armGap();
      let result: doorbell.v1.CommandResult;
      try {
        ({ result } = await o.commander.send(
          o.deviceId,
          { fetchItem: { itemId: o.itemId, offset: start, maxBytes: max } },
          o.commandTimeoutMs ?? 5_000,
          { ...(o.ttlMs ? { ttlMs: o.ttlMs } : {}), onCorrelationId: (id) => (cid = id) },
        ));
      } catch (err) {
        o.logger.warn({ err: (err as Error).message, at: start }, 'fetch: no answer; asking again');
        await reached; // the gap timer wakes it
        continue;
      }
      if (!result.ok) {
        const kind = result.errorKind;
        if (kind === doorbell.v1.ErrorKind.BUSY) {
          await reached;
          continue;
        }
        if (kind === doorbell.v1.ErrorKind.NOT_FOUND) {
          await o.store.discardPartial(o.deviceId, o.itemId);
          throw new FetchError(
            'not-found',
            result.errorMessage || `${o.itemId} is not stored on ${o.deviceId}`,
          );
        }
        throw new FetchError('refused', `${doorbell.v1.ErrorKind[kind]}: ${result.errorMessage}`);
      }
      const w = result.window;
      const got = w?.item ? doorbell.v1.StoredItem.fromObject(w.item) : undefined;
      if (!w || !got || got.id !== o.itemId || got.sha256.length !== 32 || Number(w.offset) !== start) {
        throw new FetchError('bad-answer', `the device's answer does not describe ${o.itemId} from ${start}`);
      }
      if (item && Buffer.compare(item.sha256, got.sha256) !== 0) {
        throw new FetchError('bad-answer', `${o.itemId} changed on the device during the transfer`);
      }
      if (item === undefined) {
        item = got;
        const sha = Buffer.from(item.sha256).toString('hex');
        if (await o.store.has(sha)) {
          partial.close();
          await o.store.discardPartial(o.deviceId, o.itemId);
          const entry = catalogEntry(o.deviceId, item, nowMs());
          await o.store.record(entry);
          return { path: o.store.objectPath(sha), entry, transferred: 0, resumedAt, rejects };
        }
        if (start > Number(item.bytes)) {
          throw new FetchError('bad-answer', `the partial file is longer than ${o.itemId}`);
        }
        o.onTransfer?.(partial.path);
        o.onProgress?.(partial.length, Number(item.bytes));
      }
      target = Number(w.end);
      if (partial.length < target) await reached;
    }
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    o.watcher.off('event', onEvent);
    if (gapTimer !== undefined) clock.clearTimeout(gapTimer);
    partial.close();
  }
  const entry = catalogEntry(o.deviceId, item, nowMs());
  try {
    const path = await o.store.commit(entry, entry.storedAtMs);
    return { path, entry, transferred: entry.bytes - resumedAt, resumedAt, rejects };
  } catch (err) {
    if (err instanceof FootageStoreError && (err.kind === 'hash-mismatch' || err.kind === 'size-mismatch')) {
      throw new FetchError(err.kind, err.message);
    }
    throw err;
  }
}

function catalogEntry(deviceId: string, item: doorbell.v1.StoredItem, nowMs: number): CatalogEntry {
  const meta = item.meta.length > 0 && item.meta.length <= MAX_SEALED_META_BYTES ? item.meta : undefined;
  return {
    deviceId,
    id: item.id,
    bytes: Number(item.bytes),
    sha256: Buffer.from(item.sha256).toString('hex'),
    storedAtMs: nowMs,
    ...(meta ? { meta: Buffer.from(meta).toString('base64') } : {}),
  };
}
