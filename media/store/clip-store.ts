import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Encrypter } from 'age-encryption';
import { commitTemporary, writeTemporary } from '../../common/durable-file.js';
import type { Logger } from '../../common/logger.js';
import { recipientFingerprint } from '../../proto/age-recipient.js';
import { type ItemMeta, MAX_SEALED_META_BYTES, serializeItemMeta } from '../../proto/item-meta.js';
import type { ClipMeta, ClipSink } from '../clip-sink.js';
import type { StoreConfig } from './config.js';
import { encryptToFile } from './encrypt-to-file.js';
import { isFull, nodeStoreFs, type StoreFs } from './fs.js';
import {
  fileName,
  ID_PATTERN,
  type IndexEntry,
  type ItemKind,
  idSeq,
  type LegacyFile,
  MAX_RECIPIENTS,
  metaFileName,
  newId,
  REASON_PATTERN,
  serializeIndex,
} from './index-file.js';
import { bucketLength, expiresAt, planRetention, type RetentionPlan, storeBucket } from './retention.js';
import { INDEX_FILE, scanStore, TMP_PREFIX } from './scan.js';
import { StoreError, type StoreErrorKind } from './store-error.js';

export { StoreError, type StoreErrorKind } from './store-error.js';

/** What the store seals of a clip's metadata (media/clip-sink.ts defines the whole). */
type StoredClipFields = Pick<ClipMeta, 'reason' | 'startMs' | 'endMs' | 'triggerMs'> &
  Partial<Pick<ClipMeta, 'reasons' | 'truncated'>>;

/** A stored item: its index entry plus where its files are. */
export interface StoredItem extends IndexEntry {
  path: string;
  /** Its sealed metadata file (proto/item-meta.ts), if it has one. */
  metaPath?: string;
  /** When retention deletes it at the latest (the current maxAgeS). */
  expiresMs: number;
}

export type EvictionReason = 'age' | 'size' | 'space';

export type StoreEvent =
  | { type: 'stored'; item: StoredItem; kind: ItemKind }
  | { type: 'evicted'; items: { id: string; bytes: number; why: EvictionReason }[]; bytes: number }
  | { type: 'deleted'; ids: string[] }
  | { type: 'storage-full'; id: string; code: string; retrying: boolean }
  | { type: 'write-failed'; id: string; kind: StoreErrorKind; message: string }
  | { type: 'index-rebuilt'; reason: string; entries: number };

export interface ClipStoreOptions {
  config: StoreConfig;
  logger: Logger;
  fs?: StoreFs;
  /** Wall clock in ms; ids and retention by age use it. */
  now?: () => number;
  /** The directory, when `config.dir` is unset (the daemon uses `<stateDir>/clips`). */
  dir?: string;
  /**
   * More recipients, read at every write (the owners enrolled by pairing);
   * joined with `config.recipients`. With none at all nothing is stored.
   */
  recipients?: () => readonly string[];
}

/**
 * Encrypted clip and snapshot store. Every byte that reaches the disk is age ciphertext to the
 * configured recipients; the store holds no identity and cannot read what it wrote.
 *
 * Writes stream (encrypt-to-file.ts): plaintext chunks go through age's STREAM encryption into
 * a durable temporary file in the same directory, which is then renamed to its final name and
 * the directory fsynced (common/durable-file.ts). A full disk (ENOSPC, EDQUOT) is survived
 * once: the oldest items are evicted and the same ciphertext written again. Hence
 * `maxClipBytes` bounds the memory a write uses.
 *
 * Nothing in plaintext tells when an item was recorded or why (docs/security.md, "What the card
 * shows"): its id is a sequence number, its files are named `<id>_<period>.age` and
 * `<id>_<period>.meta.age` (the period is the UTC day it was stored in, retention's only clock)
 * and dated to that period; kind, trigger and times are in the `.meta.age` file, sealed with age
 * to the same recipients (proto/item-meta.ts). The index (`index.json`) caches sizes and hashes;
 * a missing or corrupt one is rebuilt from the directory at start (scan.ts; logged, an
 * `index-rebuilt` event). Files of an earlier version, which carried the metadata in their
 * names, are converted at start.
 */
export class ClipStore implements ClipSink {
  private readonly fs: StoreFs;
  private readonly now: () => number;
  private readonly dir: string;
  private readonly entries = new Map<string, IndexEntry>();
  /** Ids with a sealed metadata file. */
  private readonly metas = new Set<string>();
  private nextSeq = 1;
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private lock: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private indexDirty = false;

  constructor(private readonly options: ClipStoreOptions) {
    this.fs = options.fs ?? nodeStoreFs;
    this.now = options.now ?? Date.now;
    const dir = options.config.dir ?? options.dir;
    if (dir === undefined) throw new TypeError('ClipStore needs config.dir or options.dir');
    this.dir = dir;
  }

  /** The configured recipients and those enrolled by pairing, without duplicates. */
  private recipients(): string[] {
    return [...new Set([...this.options.config.recipients, ...(this.options.recipients?.() ?? [])])];
  }

  /** Subscribes to store events; returns the unsubscribe function. */
  onEvent(listener: (e: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Creates the directory, removes stale temporary files, loads or rebuilds the index, applies retention. */
  async start(): Promise<void> {
    await this.fs.mkdir(this.dir);
    await this.serial(() => this.load());
    this.started = true;
    await this.runRetention();
    this.timer = setInterval(() => {
      this.runRetention().catch((err: unknown) => this.log.error({ err }, 'periodic retention failed'));
    }, this.options.config.retentionIntervalS * 1000);
    this.timer.unref();
  }

  /** Stops the retention timer and waits for queued index and retention work. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.serial(async () => {
      if (this.indexDirty) await this.writeIndex();
    });
  }

  private get bucketMs(): number {
    return bucketLength(this.options.config.maxAgeS * 1000);
  }

  private item(e: IndexEntry): StoredItem {
    return {
      ...e,
      path: join(this.dir, fileName(e)),
      ...(this.metas.has(e.id) ? { metaPath: join(this.dir, metaFileName(e)) } : {}),
      expiresMs: expiresAt(e.storedBucketMs, {
        maxAgeMs: this.options.config.maxAgeS * 1000,
        bucketMs: this.bucketMs,
      }),
    };
  }

  /** The stored item with this id, if there is one. */
  get(id: string): StoredItem | undefined {
    const e = this.entries.get(id);
    return e && this.item(e);
  }

  /** Stored items, oldest first. */
  list(): StoredItem[] {
    return [...this.entries.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((e) => this.item(e));
  }

  /** An item's sealed metadata (age ciphertext), or undefined when it has none. */
  async readMeta(item: Pick<StoredItem, 'metaPath'>): Promise<Uint8Array | undefined> {
    if (item.metaPath === undefined) return undefined;
    try {
      const bytes = await this.fs.readCapped(item.metaPath, MAX_SEALED_META_BYTES);
      if (bytes.length <= MAX_SEALED_META_BYTES) return bytes;
      this.log.warn(
        { file: item.metaPath },
        `an item's metadata file is larger than ${MAX_SEALED_META_BYTES} bytes; not sent`,
      );
      return undefined;
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * The id the next item gets, taken now: lets the caller name a snapshot
   * before it is written, e.g. in a press event sent at once.
   */
  reserveId(): string {
    return newId(this.nextSeq++);
  }

  totalBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  writeClip(meta: StoredClipFields, plaintext: Uint8Array | AsyncIterable<Uint8Array>): Promise<StoredItem> {
    return this.write('clip', meta, plaintext);
  }

  /** Stores a JPEG, under `id` when the caller took one with `reserveId`. */
  writeSnapshot(jpeg: Uint8Array, atMs: number, id?: string): Promise<StoredItem> {
    return this.write(
      'snapshot',
      { reason: 'snapshot', startMs: atMs, endMs: atMs, triggerMs: atMs },
      jpeg,
      id,
    );
  }

  /** Deletes the named items (an owner's command); returns those that were stored. */
  delete(ids: readonly string[]): Promise<string[]> {
    return this.serial(async () => {
      const deleted: string[] = [];
      for (const id of new Set(ids)) {
        const entry = this.entries.get(id);
        if (entry === undefined) continue;
        await this.unlinkItem(entry);
        deleted.push(id);
      }
      if (deleted.length > 0) {
        this.indexDirty = true;
        await this.writeIndex();
        this.log.info({ count: deleted.length }, 'items deleted');
        this.emit({ type: 'deleted', ids: deleted });
      }
      return deleted;
    });
  }

  /** Deletes items older than maxAgeS, then the oldest until the total fits maxTotalBytes. */
  runRetention(): Promise<RetentionPlan['evict']> {
    return this.serial(() => this.evict({}));
  }

  private get log(): Logger {
    return this.options.logger;
  }

  private emit(e: StoreEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err, event: e.type }, 'store event listener threw');
      }
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async write(
    kind: ItemKind,
    meta: StoredClipFields,
    plaintext: Uint8Array | AsyncIterable<Uint8Array>,
    requestedId?: string,
  ): Promise<StoredItem> {
    const id = requestedId ?? this.reserveId();
    try {
      if (!this.started) throw new StoreError('not-started', 'the clip store is not started');
      if (!ID_PATTERN.test(id) || this.entries.has(id)) {
        throw new StoreError('invalid-meta', `item id ${id.slice(0, 40)} is malformed or taken`);
      }
      if (this.recipients().length === 0) {
        throw new StoreError(
          'no-recipients',
          `no footage recipients: pair an owner with --recipient; the ${kind} was not stored`,
        );
      }
      checkMeta(meta);
      return await this.writeItem(id, kind, meta, plaintext);
    } catch (e) {
      const err =
        e instanceof StoreError
          ? e
          : isFull(e)
            ? new StoreError('storage-full', `storage full: ${(e as Error).message}`, { cause: e })
            : new StoreError('io', `writing ${kind} failed: ${(e as Error)?.message ?? String(e)}`, {
                cause: e,
              });
      this.log.error({ id, kind: err.kind, err: err.message }, `${kind} not stored`);
      this.emit({ type: 'write-failed', id, kind: err.kind, message: err.message });
      throw err;
    }
  }

  private async writeItem(
    id: string,
    kind: ItemKind,
    meta: StoredClipFields,
    plaintext: Uint8Array | AsyncIterable<Uint8Array>,
  ): Promise<StoredItem> {
    const storedBucketMs = storeBucket(this.now(), this.bucketMs);
    const base = { id, storedBucketMs };
    const tmp = join(this.dir, `${TMP_PREFIX}${id}`);
    const metaTmp = join(this.dir, `${TMP_PREFIX}${id}.meta`);
    const final = join(this.dir, fileName(base));
    const metaFinal = join(this.dir, metaFileName(base));
    const recipients = this.recipients();
    const written = await encryptToFile({
      fs: this.fs,
      tmp,
      recipients,
      plaintext,
      maxBytes: this.options.config.maxClipBytes,
      onFull: async (code, retrying, needBytes) => {
        this.log.warn({ id, code, retrying }, 'storage full while writing');
        this.emit({ type: 'storage-full', id, code, retrying });
        if (retrying) await this.serial(() => this.evict({ freeBytes: needBytes }));
      },
    });
    const entry: IndexEntry = { ...base, bytes: written.bytes, sha256: written.sha256 };
    try {
      // Only the fields the store owns: a caller's own id or extra fields must not be sealed.
      const sealed = await sealMeta(recipients, {
        v: 1,
        id,
        kind,
        reason: meta.reason,
        reasons: meta.reasons?.length ? meta.reasons.slice(0, 64) : [meta.reason],
        startMs: meta.startMs,
        endMs: meta.endMs,
        triggerMs: meta.triggerMs,
        truncated: meta.truncated ?? false,
        sha256: written.sha256,
        recipients: recipients.slice(0, MAX_RECIPIENTS).map(recipientFingerprint),
      });
      await writeTemporary(this.fs, metaTmp, 0o600, (file) => file.write(sealed));
      await this.fs.setTimes(metaTmp, storedBucketMs);
      await this.fs.setTimes(tmp, storedBucketMs);
    } catch (e) {
      await this.discard(tmp);
      await this.discard(metaTmp);
      throw e;
    }
    return this.serial(async () => {
      try {
        // The metadata first: a cut between the two renames leaves metadata without an item, which
        // the next start deletes, never an item that nobody can tell anything about.
        await commitTemporary(this.fs, metaTmp, metaFinal);
        await commitTemporary(this.fs, tmp, final);
      } catch (e) {
        if (!isFull(e) || written.retried) {
          await this.discard(tmp);
          await this.discard(metaTmp);
          await this.discard(metaFinal);
          throw e;
        }
        // A directory that needs a new block can fail the rename on a full disk: evict, try once more.
        const code = String((e as { code?: unknown }).code);
        this.log.warn({ id, code, retrying: true }, 'storage full while committing');
        this.emit({ type: 'storage-full', id, code, retrying: true });
        await this.evict({ freeBytes: 64 * 1024 });
        try {
          await commitTemporary(this.fs, metaTmp, metaFinal).catch((err: unknown) => {
            if ((err as { code?: unknown }).code !== 'ENOENT') throw err; // renamed before the failure
          });
          await commitTemporary(this.fs, tmp, final);
        } catch (e2) {
          await this.discard(tmp);
          await this.discard(metaTmp);
          await this.discard(metaFinal);
          if (isFull(e2)) this.emit({ type: 'storage-full', id, code, retrying: false });
          throw e2;
        }
      }
      this.entries.set(id, entry);
      this.metas.add(id);
      this.indexDirty = true;
      const item = this.item(entry);
      this.log.info({ id, kind, bytes: entry.bytes }, `${kind} stored`);
      this.emit({ type: 'stored', item, kind });
      await this.evict({ keep: new Set([id]) });
      return item;
    });
  }

  /** Deletes a temporary file left by a failed commit; never throws. */
  private async discard(tmp: string): Promise<void> {
    await this.fs.unlink(tmp).catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 'ENOENT')
        this.log.warn({ err, tmp }, 'could not delete temporary file');
    });
  }

  /** Must run inside `serial`. Deletes what the retention plan says, then saves the index. */
  private async evict(extra: {
    freeBytes?: number;
    keep?: ReadonlySet<string>;
  }): Promise<RetentionPlan['evict']> {
    const cfg = this.options.config;
    const plan = planRetention([...this.entries.values()], {
      nowMs: this.now(),
      maxAgeMs: cfg.maxAgeS * 1000,
      bucketMs: this.bucketMs,
      maxTotalBytes: cfg.maxTotalBytes,
      ...extra,
    });
    const done: RetentionPlan['evict'] = [];
    for (const ev of plan.evict) {
      const entry = this.entries.get(ev.id);
      if (entry === undefined) continue;
      try {
        await this.unlinkItem(entry);
      } catch (err) {
        this.log.error({ err, id: ev.id }, 'could not delete an expired item');
        continue;
      }
      done.push(ev);
    }
    if (done.length > 0) {
      this.indexDirty = true;
      const bytes = done.reduce((n, e) => n + e.bytes, 0);
      this.log.info(
        { count: done.length, bytes, why: [...new Set(done.map((e) => e.why))] },
        'items evicted',
      );
      this.emit({ type: 'evicted', items: done, bytes });
    }
    if (this.indexDirty) await this.writeIndex();
    return done;
  }

  /** Must run inside `serial`. Best effort: the index can always be rebuilt from the files. */
  private async writeIndex(): Promise<void> {
    const tmp = join(this.dir, `${TMP_PREFIX}index`);
    try {
      await this.fs.unlink(tmp).catch(() => undefined);
      await writeTemporary(this.fs, tmp, 0o600, (file) =>
        file.write(
          serializeIndex(
            this.list().map((e) => ({
              id: e.id,
              storedBucketMs: e.storedBucketMs,
              bytes: e.bytes,
              sha256: e.sha256,
            })),
          ),
        ),
      );
      await commitTemporary(this.fs, tmp, join(this.dir, INDEX_FILE));
      this.indexDirty = false;
    } catch (err) {
      await this.discard(tmp);
      this.log.warn(
        { err },
        'could not save the index; it will be retried and can be rebuilt from the files',
      );
    }
  }

  /** Must run inside `serial`. Deletes an item's files (the metadata last) and forgets it. */
  private async unlinkItem(entry: IndexEntry): Promise<void> {
    for (const name of [fileName(entry), metaFileName(entry)]) {
      try {
        await this.fs.unlink(join(this.dir, name));
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
      }
    }
    this.entries.delete(entry.id);
    this.metas.delete(entry.id);
  }

  /** Must run inside `serial`. */
  private async load(): Promise<void> {
    const scan = await scanStore(this.fs, this.dir, this.log);
    this.entries.clear();
    this.metas.clear();
    for (const [id, e] of scan.entries) this.entries.set(id, e);
    for (const id of scan.metas) this.metas.add(id);
    for (const id of this.entries.keys()) this.nextSeq = Math.max(this.nextSeq, idSeq(id) + 1);
    if (scan.dirty) this.indexDirty = true;
    if (scan.rebuilt !== undefined)
      this.emit({ type: 'index-rebuilt', reason: scan.rebuilt, entries: this.entries.size });
    if (scan.legacy.length > 0) await this.convertLegacy(scan.legacy);
    if (this.indexDirty) await this.writeIndex();
  }

  /**
   * Must run inside `serial`. Gives each file of an earlier version (metadata in
   * its name) a sequence id and a store period, and seals its metadata: after
   * this, nothing in the directory names a time or a trigger. Without
   * recipients the files stay as they are (and unlisted) until there are some.
   */
  private async convertLegacy(files: LegacyFile[]): Promise<void> {
    const recipients = this.recipients();
    if (recipients.length === 0) {
      this.log.warn(
        { files: files.length },
        'items of an earlier version wait for a recipient to be converted',
      );
      return;
    }
    let converted = 0;
    for (const f of [...files].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const from = join(this.dir, f.name);
      try {
        const hash = createHash('sha256');
        for await (const c of this.fs.read(from)) hash.update(c);
        const sha256 = hash.digest('hex');
        const id = this.reserveId();
        // The old id began with the store time: retention keeps its clock, to the period.
        const storedBucketMs = storeBucket(Number(f.id.slice(0, 13)), this.bucketMs);
        const base = { id, storedBucketMs };
        const sealed = await sealMeta(recipients, {
          v: 1,
          id,
          kind: f.kind,
          reason: f.reason,
          reasons: [f.reason],
          startMs: f.startMs,
          endMs: f.endMs,
          triggerMs: f.triggerMs,
          truncated: false,
          sha256,
          recipients: [],
        });
        const metaTmp = join(this.dir, `${TMP_PREFIX}${id}.meta`);
        await writeTemporary(this.fs, metaTmp, 0o600, (file) => file.write(sealed));
        await this.fs.setTimes(metaTmp, storedBucketMs);
        await commitTemporary(this.fs, metaTmp, join(this.dir, metaFileName(base)));
        await this.fs.setTimes(from, storedBucketMs);
        await commitTemporary(this.fs, from, join(this.dir, fileName(base)));
        this.entries.set(id, { ...base, bytes: await this.fs.size(join(this.dir, fileName(base))), sha256 });
        this.metas.add(id);
        this.indexDirty = true;
        converted += 1;
      } catch (err) {
        this.log.error({ err, file: f.name }, 'could not convert an item of an earlier version');
      }
    }
    this.log.info({ converted }, 'items of an earlier version converted: their metadata is now sealed');
  }
}

/** Encrypts an item's metadata record to its recipients (proto/item-meta.ts). */
async function sealMeta(recipients: readonly string[], meta: ItemMeta): Promise<Uint8Array> {
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return e.encrypt(serializeItemMeta(meta));
}

function checkMeta(meta: StoredClipFields): void {
  const times = [meta.startMs, meta.endMs, meta.triggerMs];
  if (typeof meta.reason !== 'string' || !REASON_PATTERN.test(meta.reason)) {
    throw new StoreError('invalid-meta', `reason must match ${REASON_PATTERN}`);
  }
  if (!times.every((t) => Number.isSafeInteger(t) && t >= 0) || meta.startMs > meta.endMs) {
    throw new StoreError('invalid-meta', 'times must be non-negative integer ms with startMs <= endMs');
  }
}

export { ID_PATTERN as ITEM_ID_PATTERN } from './index-file.js';
