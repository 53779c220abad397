import { closeSync, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { syncDirectory, writeFileDurably } from '../../common/durable-file.js';
import { sha256File } from '../../common/hash-file.js';
import { ITEM_ID_PATTERN } from '../../proto/footage.js';
import { isDeviceId } from '../../proto/index.js';
import { MAX_SEALED_META_BYTES } from '../../proto/item-meta.js';

/**
 * The hub's footage store: ciphertext only, content-addressed and so
 * deduplicated. Layout under `<stateDir>/footage/`:
 *
 *  - `objects/<sha256>.age`: complete items, each checked against the SHA-256
 *    the device signed before it was moved here;
 *  - `partial/<device>/<item id>.part`: a transfer under way; its length is
 *    where the transfer resumes;
 *  - `catalog.json`: which device item is which object (what a listing
 *    needs when the device has evicted it);
 *  - `log.jsonl`: what the store did, one JSON line each (`item.stored`,
 *    `item.evicted` by retention, `item.deleted` by the owner), as the
 *    doorbell logs its own.
 *
 * The hub holds no identity that decrypts any of it.
 */

export type FootageErrorKind = 'hash-mismatch' | 'size-mismatch' | 'bad-chunk' | 'catalog';

export class FootageStoreError extends Error {
  override readonly name = 'FootageStoreError';
  constructor(
    readonly kind: FootageErrorKind,
    message: string,
  ) {
    super(message);
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const MAX_CATALOG_BYTES = 16 * 1024 * 1024;

const catalogEntrySchema = z
  .object({
    deviceId: z.string().refine(isDeviceId, 'not a device id'),
    id: z.string().regex(ITEM_ID_PATTERN),
    bytes: z.number().int().min(0),
    sha256: z.string().regex(SHA256_HEX),
    storedAtMs: z.number().int().min(0),
    /** The item's sealed metadata (proto/item-meta.ts) as the device listed it, base64: only an owner opens it. */
    meta: z
      .string()
      .max(Math.ceil(MAX_SEALED_META_BYTES / 3) * 4)
      .optional(),
  })
  .strict();
export type CatalogEntry = z.infer<typeof catalogEntrySchema>;
/** A catalog of an earlier version kept the metadata in plaintext: read, it is dropped. */
const legacyCatalogSchema = z
  .object({
    version: z.literal(1),
    entries: z.array(
      catalogEntrySchema
        .omit({ meta: true })
        .extend({ kind: z.string(), reason: z.string(), startMs: z.number(), endMs: z.number() })
        .strict()
        .transform(({ kind: _k, reason: _r, startMs: _s, endMs: _e, ...rest }) => rest),
    ),
  })
  .strict();
const catalogSchema = z.union([
  z.object({ version: z.literal(2), entries: z.array(catalogEntrySchema) }).strict(),
  legacyCatalogSchema,
]);

export interface RetentionLimits {
  /** Total object bytes kept at most; the oldest go first. */
  maxBytes: number;
}

export const DEFAULT_RETENTION: RetentionLimits = { maxBytes: 20 * 1024 ** 3 };

/** A transfer being written: append chunks in order, then commit. */
export interface PartialFile {
  readonly path: string;
  /** Bytes written so far: the next chunk's offset. */
  readonly length: number;
  append(offset: number, data: Uint8Array): void;
  /** fsyncs and closes; a second call does nothing. */
  close(): void;
}

export class FootageStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, 'footage');
  }

  objectPath(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new TypeError('not a SHA-256');
    return join(this.root, 'objects', `${sha256}.age`);
  }

  partialPath(deviceId: string, itemId: string): string {
    if (!isDeviceId(deviceId) || !ITEM_ID_PATTERN.test(itemId)) throw new TypeError('bad device or item id');
    return join(this.root, 'partial', deviceId, `${itemId}.part`);
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.objectPath(sha256)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  /** Opens (creating) the partial file of a device's item; its length is where to resume. */
  async openPartial(deviceId: string, itemId: string): Promise<PartialFile> {
    const path = this.partialPath(deviceId, itemId);
    await mkdir(join(this.root, 'partial', deviceId), { recursive: true, mode: 0o700 });
    const fd = openSync(path, 'a', 0o600);
    let length = statSync(path).size;
    let open = true;
    return {
      path,
      get length() {
        return length;
      },
      append(offset, data) {
        if (offset !== length)
          throw new FootageStoreError('bad-chunk', `chunk at ${offset}, expected ${length}`);
        let done = 0;
        while (done < data.length) done += writeSync(fd, data, done, data.length - done);
        length += data.length;
      },
      close() {
        if (!open) return;
        open = false;
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      },
    };
  }

  /** Forgets a transfer (a hash mismatch, or the device's item changed). */
  async discardPartial(deviceId: string, itemId: string): Promise<void> {
    await unlink(this.partialPath(deviceId, itemId)).catch(() => undefined);
  }

  /**
   * Checks the complete partial file's size and SHA-256 against what the
   * device signed and moves it into `objects/`; on a mismatch deletes it and
   * throws. Then records it in the catalog and applies retention.
   */
  async commit(
    entry: Omit<CatalogEntry, 'storedAtMs'>,
    nowMs: number,
    limits = DEFAULT_RETENTION,
  ): Promise<string> {
    const partial = this.partialPath(entry.deviceId, entry.id);
    const size = (await stat(partial)).size;
    if (size !== entry.bytes) {
      await unlink(partial).catch(() => undefined);
      throw new FootageStoreError(
        'size-mismatch',
        `${size} bytes received, the device signed ${entry.bytes}`,
      );
    }
    const actual = await sha256File(partial);
    if (actual !== entry.sha256) {
      await unlink(partial).catch(() => undefined);
      throw new FootageStoreError(
        'hash-mismatch',
        `the received file's SHA-256 is ${actual}, the device signed ${entry.sha256}: discarded`,
      );
    }
    const object = this.objectPath(entry.sha256);
    await mkdir(join(this.root, 'objects'), { recursive: true, mode: 0o700 });
    await rename(partial, object);
    await syncDirectory(join(this.root, 'objects'));
    await this.record({ ...entry, storedAtMs: nowMs }, limits);
    return object;
  }

  /** Records an item whose object is already here (deduplicated: nothing was transferred). */
  async record(entry: CatalogEntry, limits = DEFAULT_RETENTION): Promise<void> {
    const catalog = (await this.catalog()).filter(
      (e) => !(e.deviceId === entry.deviceId && e.id === entry.id),
    );
    catalog.push(entry);
    await this.note('item.stored', entry);
    await this.applyRetention(catalog, limits);
  }

  /**
   * Forgets a device's items: their catalog entries, their partial files, and
   * each object no other entry names. Returns the ids that were in the catalog.
   */
  async forget(deviceId: string, itemIds: readonly string[]): Promise<string[]> {
    const gone = new Set(itemIds);
    const catalog = await this.catalog();
    const removed = catalog.filter((e) => e.deviceId === deviceId && gone.has(e.id));
    const kept = catalog.filter((e) => !(e.deviceId === deviceId && gone.has(e.id)));
    for (const id of gone) await this.discardPartial(deviceId, id);
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await writeFileDurably(
      join(this.root, 'catalog.json'),
      JSON.stringify({ version: 2, entries: kept }),
      0o600,
    );
    const named = new Set(kept.map((e) => e.sha256));
    for (const e of removed) {
      await this.note('item.deleted', e);
      if (!named.has(e.sha256)) await unlink(this.objectPath(e.sha256)).catch(() => undefined);
    }
    return removed.map((e) => e.id);
  }

  async find(deviceId: string, itemId: string): Promise<CatalogEntry | undefined> {
    return (await this.catalog()).find((e) => e.deviceId === deviceId && e.id === itemId);
  }

  async catalog(): Promise<CatalogEntry[]> {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(this.root, 'catalog.json'));
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return [];
      throw err;
    }
    if (bytes.length > MAX_CATALOG_BYTES) throw new FootageStoreError('catalog', 'catalog.json is too large');
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new FootageStoreError('catalog', 'catalog.json is not JSON');
    }
    const r = catalogSchema.safeParse(json);
    if (!r.success)
      throw new FootageStoreError('catalog', `catalog.json is invalid: ${r.error.issues[0]?.message}`);
    return r.data.entries;
  }

  /** Appends to `log.jsonl`. */
  private async note(event: string, e: CatalogEntry, extra: Record<string, string> = {}): Promise<void> {
    const line = {
      atMs: Date.now(),
      event,
      deviceId: e.deviceId,
      id: e.id,
      sha256: e.sha256,
      bytes: e.bytes,
      ...extra,
    };
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await appendFile(join(this.root, 'log.jsonl'), `${JSON.stringify(line)}\n`, { mode: 0o600 });
  }

  /** What the store did, oldest first. */
  async log(): Promise<Record<string, unknown>[]> {
    const text = await readFile(join(this.root, 'log.jsonl'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Drops the oldest objects until the total fits; objects no entry names go too. */
  private async applyRetention(catalog: CatalogEntry[], limits: RetentionLimits): Promise<void> {
    catalog.sort((a, b) => a.storedAtMs - b.storedAtMs);
    const sizes = new Map<string, number>();
    for (const e of catalog) sizes.set(e.sha256, e.bytes);
    let total = [...sizes.values()].reduce((n, b) => n + b, 0);
    const drop = new Set<string>();
    for (const e of catalog) {
      if (total <= limits.maxBytes) break;
      if (drop.has(e.sha256)) continue;
      drop.add(e.sha256);
      total -= e.bytes;
    }
    const kept = catalog.filter((e) => !drop.has(e.sha256));
    for (const e of catalog) if (drop.has(e.sha256)) await this.note('item.evicted', e, { why: 'size' });
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await writeFileDurably(
      join(this.root, 'catalog.json'),
      JSON.stringify({ version: 2, entries: kept }),
      0o600,
    );
    const named = new Set(kept.map((e) => e.sha256));
    const objects = await readdir(join(this.root, 'objects')).catch(() => [] as string[]);
    for (const name of objects) {
      const sha = name.replace(/\.age$/, '');
      if (SHA256_HEX.test(sha) && !named.has(sha))
        await unlink(join(this.root, 'objects', name)).catch(() => undefined);
    }
  }
}
