import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import type { StoreFs } from './fs.js';
import {
  fileName,
  type IndexEntry,
  IndexError,
  type LegacyFile,
  MAX_INDEX_BYTES,
  metaFileName,
  parseFileName,
  parseIndex,
  parseLegacyFileName,
} from './index-file.js';

export const INDEX_FILE = 'index.json';
export const TMP_PREFIX = '.tmp-';

/** What a store directory holds, as found at start. */
export interface Scan {
  entries: Map<string, IndexEntry>;
  /** Ids whose sealed metadata file exists. */
  metas: Set<string>;
  /** Files in an earlier version's format (metadata in the name), to be converted. */
  legacy: LegacyFile[];
  /** The index on disk differs from the entries: it must be written. */
  dirty: boolean;
  /** Why the index was rebuilt from the files (missing, corrupt), if it was. */
  rebuilt?: string;
}

/**
 * Reads a store directory: deletes partial files left by interrupted writes,
 * loads the index (`index.json`, which caches sizes and hashes) and checks it
 * against the files, whose names carry the rest (id and store period). A
 * missing or corrupt index is rebuilt from the files (logged); a file the
 * index does not know, or knows with another size, is hashed again. A
 * metadata file without its item (a write cut between the two renames) is
 * deleted.
 */
export async function scanStore(fs: StoreFs, dir: string, log: Logger): Promise<Scan> {
  const names = await fs.readdir(dir);
  const remove = async (n: string, why: string) => {
    log.warn({ file: n }, why);
    await fs.unlink(join(dir, n)).catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 'ENOENT')
        log.warn({ err, file: n }, 'could not delete a file');
    });
  };
  for (const n of names) {
    if (n.startsWith(TMP_PREFIX)) await remove(n, 'deleting a partial file left by an interrupted write');
  }
  const legacy: LegacyFile[] = [];
  for (const n of names) {
    const l = parseLegacyFileName(n);
    if (l !== undefined) legacy.push(l);
  }
  const parsed = names.flatMap((n) => {
    const p = parseFileName(n);
    return p === undefined || (p.meta ? metaFileName(p) : fileName(p)) !== n ? [] : [{ ...p, name: n }];
  });
  let cached = new Map<string, IndexEntry>();
  let rebuilt: string | undefined;
  try {
    const bytes = await fs.readCapped(join(dir, INDEX_FILE), MAX_INDEX_BYTES);
    cached = new Map(parseIndex(bytes).map((e) => [e.id, e]));
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') {
      if (parsed.length > 0) rebuilt = 'index missing';
    } else {
      rebuilt = err instanceof IndexError ? `index corrupt (${err.kind}): ${err.message}` : String(err);
    }
  }
  if (rebuilt !== undefined) log.warn({ reason: rebuilt }, 'rebuilding the clip index from the files');

  const entries = new Map<string, IndexEntry>();
  let dirty = false;
  for (const p of parsed) {
    if (p.meta) continue;
    const path = join(dir, p.name);
    const size = await fs.size(path);
    const hit = cached.get(p.id);
    if (hit !== undefined && hit.storedBucketMs === p.storedBucketMs && hit.bytes === size) {
      entries.set(p.id, hit);
      continue;
    }
    const hash = createHash('sha256');
    for await (const c of fs.read(path)) hash.update(c);
    entries.set(p.id, {
      id: p.id,
      storedBucketMs: p.storedBucketMs,
      bytes: size,
      sha256: hash.digest('hex'),
    });
    dirty = true;
  }
  const metas = new Set<string>();
  for (const p of parsed) {
    if (!p.meta) continue;
    if (entries.get(p.id)?.storedBucketMs === p.storedBucketMs) metas.add(p.id);
    else await remove(p.name, 'deleting item metadata whose item is gone');
  }
  if (cached.size !== entries.size) dirty = true;
  return { entries, metas, legacy, dirty, ...(rebuilt !== undefined ? { rebuilt } : {}) };
}
