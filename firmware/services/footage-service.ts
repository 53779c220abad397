import { type FileHandle, open } from 'node:fs/promises';
import type { Logger } from '../../common/logger.js';
import type { StoredItem } from '../../media/store/clip-store.js';
import { ID_PATTERN } from '../../media/store/index-file.js';
import { failure } from '../../proto/command-result.js';
import { ITEM_CHUNK_BYTES, MAX_WINDOW_BYTES } from '../../proto/footage.js';
import { doorbell } from '../../proto/index.js';

type Result = doorbell.v1.ICommandResult;
const { ErrorKind } = doorbell.v1;

/** What the footage commands need of the clip store (media/store/clip-store.ts). */
export interface FootageStore {
  list(): StoredItem[];
  get(id: string): StoredItem | undefined;
  /** An item's sealed metadata (age ciphertext), undefined when it has none. */
  readMeta(item: StoredItem): Promise<Uint8Array | undefined>;
  /** Deletes the named items; returns those that were stored. */
  delete(ids: readonly string[]): Promise<string[]>;
}

/** Ids a DeleteItems names at most. */
export const MAX_DELETE_IDS = 100;

export { ITEM_CHUNK_BYTES, MAX_WINDOW_BYTES } from '../../proto/footage.js';
/** A FetchItem's window when it names none (the largest it may name is MAX_WINDOW_BYTES). */
export const DEFAULT_WINDOW_BYTES = 1024 * 1024;
/** Items a ListItems page holds at most, and the bytes its items take at most (the envelope is 16 KiB). */
export const MAX_PAGE_ITEMS = 40;
export const PAGE_BUDGET_BYTES = 12 * 1024;
/** Chunks of one window published and not yet acknowledged by the broker, at most. */
export const CHUNKS_IN_FLIGHT = 1;
/** Windows sent at once; a FetchItem beyond them is BUSY. */
export const DEFAULT_MAX_WINDOWS = 2;

export interface FootageServiceDeps {
  /**
   * The clip store once it has started; `'starting'` while media is on but the
   * store is not open yet (answered BUSY: ask again); undefined without media.
   */
  store: () => FootageStore | 'starting' | undefined;
  /**
   * Seals one chunk as an ItemChunk event on the device's `data` topic with
   * the request's correlation id and publishes it at QoS 1; resolves on the
   * broker's acknowledgement, rejects when the connection is down. The
   * chunk's `data` is reused for the next chunk once the call returns: it must
   * be sealed (copied) before then.
   */
  sendChunk: (chunk: doorbell.v1.IItemChunk, correlationId: string) => Promise<void>;
  /**
   * Resolves when no ring-path event waits to be sent (the durable outbox is
   * empty). Each chunk waits for it, so a press's events leave before the next
   * chunk, on the wire and in the broker, and the doorbell's CPU goes to them
   * first. Default: never waits.
   */
  ringPathIdle?: () => Promise<void>;
  logger: Logger;
  maxWindows?: number;
  /**
   * An audit log entry (firmware/audit-log.ts) for a listing or a window sent:
   * at most one per key per `AUDIT_INTERVAL_MS`, the reads in between counted
   * in the next, so that a View key cannot grow the log faster than a busy
   * doorbell does.
   */
  audit?: (event: string, data: Record<string, string | number | boolean>) => void;
  nowMs?: () => number;
}

/** One footage audit entry per key at most this often; the reads in between are counted in the next. */
export const AUDIT_INTERVAL_MS = 60_000;
/** Keys whose last entry time is remembered; beyond it the oldest are forgotten (and logged at once next time). */
const MAX_AUDITED_KEYS = 256;

interface Window {
  itemId: string;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * The footage commands: ListItems answers from the store's index (with each item's sealed metadata), FetchItem
 * sends a window of one item's ciphertext as signed chunks. The device keeps
 * no transfer state: each window is a new request, so a transfer resumes
 * from whatever offset the requester has, after any interruption on either
 * side. Flow control is the requester's: at most one window per request and
 * `maxWindows` at once, at most CHUNKS_IN_FLIGHT chunks of a window published
 * and not yet acknowledged by the broker, so a slow or vanished hub costs the
 * device a few chunks of memory per window and nothing more. Nothing here decrypts:
 * the store holds age ciphertext and so do the chunks.
 */
export class FootageService {
  private readonly windows = new Set<Window>();
  private readonly audited = new Map<string, { atMs: number; suppressed: number }>();

  constructor(private readonly deps: FootageServiceDeps) {}

  private record(event: string, byKeyId: string, data: Record<string, string | number | boolean>): void {
    if (!this.deps.audit) return;
    const now = (this.deps.nowMs ?? Date.now)();
    const last = this.audited.get(byKeyId);
    if (last && now - last.atMs < AUDIT_INTERVAL_MS && now >= last.atMs) {
      last.suppressed += 1;
      return;
    }
    this.audited.delete(byKeyId);
    if (this.audited.size >= MAX_AUDITED_KEYS) {
      const oldest = this.audited.keys().next().value;
      if (oldest !== undefined) this.audited.delete(oldest);
    }
    this.audited.set(byKeyId, { atMs: now, suppressed: 0 });
    this.deps.audit(event, {
      ...data,
      by: byKeyId,
      ...(last?.suppressed ? { readsBefore: last.suppressed } : {}),
    });
  }

  /**
   * One page of items, oldest first, each with its sealed metadata: the
   * device cannot read when an item was recorded or why, so it cannot filter
   * by them; the owner's side does.
   */
  async list(c: doorbell.v1.IListItems | null | undefined, byKeyId = ''): Promise<Result> {
    const store = this.deps.store();
    if (store === undefined) return noFootage();
    if (store === 'starting') return starting();
    const afterId = c?.afterId ?? '';
    const limit = c?.limit || MAX_PAGE_ITEMS;
    if (limit > MAX_PAGE_ITEMS) return invalid(`limit is 1 to ${MAX_PAGE_ITEMS}`);
    if (afterId !== '' && !ID_PATTERN.test(afterId)) return invalid('after_id is not an item id');
    const items: doorbell.v1.IStoredItem[] = [];
    let bytes = 0;
    let more = false;
    for (const e of store.list()) {
      if (afterId !== '' && e.id <= afterId) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      const item = storedItem(e, await this.meta(store, e));
      const size = doorbell.v1.StoredItem.encode(item).finish().length + 4;
      if (bytes + size > PAGE_BUDGET_BYTES) {
        more = true;
        break;
      }
      items.push(item);
      bytes += size;
    }
    const last = items.at(-1)?.id;
    this.record('footage.listed', byKeyId, { items: items.length, afterId });
    return { ok: true, items: { items, nextAfterId: more && last ? last : '' } };
  }

  /** Answers once the item's file is open (its eviction from then on does not cut the window short), then sends. */
  async fetch(
    c: doorbell.v1.IFetchItem | null | undefined,
    correlationId: string,
    byKeyId: string,
  ): Promise<Result> {
    const store = this.deps.store();
    if (store === undefined) return noFootage();
    if (store === 'starting') return starting();
    const id = c?.itemId ?? '';
    const offset = Number(c?.offset ?? 0);
    const maxBytes = c?.maxBytes || DEFAULT_WINDOW_BYTES;
    if (!ID_PATTERN.test(id)) return invalid('item_id is not an item id');
    if (maxBytes > MAX_WINDOW_BYTES) return invalid(`max_bytes is 1 to ${MAX_WINDOW_BYTES}`);
    const item = store.get(id);
    if (item === undefined) return failure(ErrorKind.NOT_FOUND, `no item ${id} is stored`);
    if (offset > item.bytes) return invalid(`offset ${offset} is beyond the item's ${item.bytes} bytes`);
    if (this.windows.size >= (this.deps.maxWindows ?? DEFAULT_MAX_WINDOWS)) {
      return failure(ErrorKind.BUSY, `${this.windows.size} windows are being sent; ask again`);
    }
    const end = Math.min(item.bytes, offset + maxBytes);
    let file: FileHandle;
    try {
      file = await open(item.path, 'r');
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT')
        return failure(ErrorKind.NOT_FOUND, `item ${id} was just deleted`);
      throw err;
    }
    this.deps.logger.info({ id, offset, end, byKeyId, correlationId }, 'sending an item window');
    this.record('footage.fetched', byKeyId, { id, offset, end });
    const abort = new AbortController();
    const window: Window = { itemId: id, abort, done: Promise.resolve() };
    this.windows.add(window);
    window.done = this.send(file, id, offset, end, correlationId, abort.signal)
      .catch((err: unknown) => {
        this.deps.logger.warn(
          { id, correlationId, err: (err as Error)?.message ?? String(err) },
          'item window not completed; the requester asks again from where it is',
        );
      })
      .finally(() => {
        this.windows.delete(window);
        void file.close().catch(() => undefined);
      });
    return { ok: true, window: { item: storedItem(item, await this.meta(store, item)), offset, end } };
  }

  /** Deletes items (Administer): windows of them stop, each deletion is an audit entry. */
  async delete(c: doorbell.v1.IDeleteItems | null | undefined, byKeyId: string): Promise<Result> {
    const store = this.deps.store();
    if (store === undefined) return noFootage();
    if (store === 'starting') return starting();
    const ids = c?.itemIds ?? [];
    if (ids.length === 0 || ids.length > MAX_DELETE_IDS)
      return invalid(`name 1 to ${MAX_DELETE_IDS} item ids`);
    if (ids.some((id) => !ID_PATTERN.test(id))) return invalid('item_ids must be item ids');
    const gone = new Set(ids);
    const stopping = [...this.windows].filter((w) => gone.has(w.itemId));
    for (const w of stopping) w.abort.abort();
    await Promise.all(stopping.map((w) => w.done));
    const deleted = await store.delete(ids);
    for (const id of deleted) this.deps.audit?.('item.deleted', { id, by: byKeyId });
    const removed = new Set(deleted);
    return { ok: true, deleted: { itemIds: deleted, notFound: [...gone].filter((id) => !removed.has(id)) } };
  }

  /** An item's sealed metadata; a file that cannot be read is logged and the item listed without it. */
  private async meta(store: FootageStore, item: StoredItem): Promise<Uint8Array | undefined> {
    try {
      return await store.readMeta(item);
    } catch (err) {
      this.deps.logger.warn(
        { id: item.id, err },
        "an item's metadata file cannot be read; listed without it",
      );
      return undefined;
    }
  }

  /** Stops every window being sent and waits for them. */
  async stop(): Promise<void> {
    for (const w of this.windows) w.abort.abort();
    await Promise.all([...this.windows].map((w) => w.done));
  }

  private async send(
    file: FileHandle,
    itemId: string,
    offset: number,
    end: number,
    correlationId: string,
    signal: AbortSignal,
  ): Promise<void> {
    // A stop does not wait for a broker that never acknowledges.
    const stopped = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true });
    });
    stopped.catch(() => undefined);
    // After the answer is queued: the chunks never overtake the ring path's events in the outbox.
    await new Promise((r) => setImmediate(r));
    // Up to CHUNKS_IN_FLIGHT published and not yet acknowledged; MQTT keeps their order.
    const inFlight = new Set<Promise<void>>();
    // One read buffer for the window instead of a new 240 KiB one a chunk: sendChunk seals
    // the bytes before it returns, so no chunk's data outlives the call.
    const buffer = Buffer.allocUnsafe(Math.min(ITEM_CHUNK_BYTES, end - offset));
    for (let at = offset; at < end; ) {
      if (signal.aborted) throw new Error('stopped');
      // The ring path first: a press's events leave before the next chunk does.
      if (this.deps.ringPathIdle) await Promise.race([this.deps.ringPathIdle(), stopped]);
      const n = Math.min(ITEM_CHUNK_BYTES, end - at);
      const data = buffer.subarray(0, n);
      const { bytesRead } = await file.read(data, 0, n, at);
      if (bytesRead !== n) throw new Error(`the file ended at ${at + bytesRead}, before its indexed size`);
      const sent: Promise<void> = this.deps
        .sendChunk({ itemId, offset: at, data }, correlationId)
        .then(() => {
          inFlight.delete(sent);
        });
      sent.catch(() => undefined);
      inFlight.add(sent);
      at += n;
      if (inFlight.size >= CHUNKS_IN_FLIGHT) await Promise.race([...inFlight, stopped]);
    }
    await Promise.race([Promise.all(inFlight), stopped]);
  }
}

/** An item as the wire lists it: what retention needs, and its sealed metadata. */
export function storedItem(e: StoredItem, meta: Uint8Array | undefined): doorbell.v1.IStoredItem {
  return {
    id: e.id,
    bytes: e.bytes,
    sha256: Buffer.from(e.sha256, 'hex'),
    expiresMs: e.expiresMs,
    ...(meta ? { meta } : {}),
  };
}

function starting(): Result {
  return failure(ErrorKind.BUSY, 'the clip store is starting; ask again');
}

function noFootage(): Result {
  return failure(ErrorKind.UNSUPPORTED_COMMAND, 'this doorbell records no footage (media is off)');
}

function invalid(message: string): Result {
  return failure(ErrorKind.INVALID_ARGUMENT, message);
}
