import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import type { StoreFs } from './fs.js';
import {
  fileName,
  type IndexEntry,
  IndexError,
  MAX_INDEX_BYTES,
  parseFileName,
  parseIndex,
} from './index-file.js';

export const INDEX_FILE = 'index.json';
export const TMP_PREFIX = '.tmp-';

/** What a store directory holds, as found at start. */
export interface Scan {
  entries: Map<string, IndexEntry>;
  /** The index on disk differs from the entries: it must be written. */
  dirty: boolean;
  /** Why the index was rebuilt from the files (missing, corrupt), if it was. */
  rebuilt?: string;
}

/**
 * Reads a store directory: deletes partial files left by interrupted writes,
 * loads the index (`index.json`, which caches sizes and hashes) and checks it
 * against the files, whose names carry all other metadata. A missing or
 * corrupt index is rebuilt from the files (logged); a file the index does not
 * know, or knows with another size, is hashed again.
 */
export async function scanStore(fs: StoreFs, dir: string, log: Logger): Promise<Scan> {
  const names = await fs.readdir(dir);
  for (const n of names) {
    if (!n.startsWith(TMP_PREFIX)) continue;
    log.warn({ file: n }, 'deleting a partial file left by an interrupted write');
    await fs.unlink(join(dir, n)).catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 'ENOENT')
        log.warn({ err, file: n }, 'could not delete a partial file');
    });
  }
  let cached = new Map<string, IndexEntry>();
  let rebuilt: string | undefined;
  try {
    const bytes = await fs.readCapped(join(dir, INDEX_FILE), MAX_INDEX_BYTES);
    cached = new Map(parseIndex(bytes).map((e) => [e.id, e]));
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') {
      if (names.some((n) => parseFileName(n) !== undefined)) rebuilt = 'index missing';
    } else {
      rebuilt = err instanceof IndexError ? `index corrupt (${err.kind}): ${err.message}` : String(err);
    }
  }
  if (rebuilt !== undefined) log.warn({ reason: rebuilt }, 'rebuilding the clip index from the files');

  const entries = new Map<string, IndexEntry>();
  let dirty = false;
  for (const n of names) {
    const meta = parseFileName(n);
    if (meta === undefined || fileName(meta) !== n) continue;
    const path = join(dir, n);
    const size = await fs.size(path);
    const hit = cached.get(meta.id);
    if (hit !== undefined && fileName(hit) === n && hit.bytes === size) {
      entries.set(meta.id, hit);
      continue;
    }
    const hash = createHash('sha256');
    for await (const c of fs.read(path)) hash.update(c);
    entries.set(meta.id, { ...meta, bytes: size, sha256: hash.digest('hex') });
    dirty = true;
  }
  if (cached.size !== entries.size) dirty = true;
  return { entries, dirty, ...(rebuilt !== undefined ? { rebuilt } : {}) };
}
