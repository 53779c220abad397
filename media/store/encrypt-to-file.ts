import { createHash } from 'node:crypto';
import { Encrypter } from 'age-encryption';
import { writeTemporary } from '../../common/durable-file.js';
import { isFull, type StoreFs } from './fs.js';
import { StoreError } from './store-error.js';

export interface EncryptToFileOptions {
  fs: StoreFs;
  /** The temporary file, complete and fsynced when this resolves. */
  tmp: string;
  recipients: readonly string[];
  plaintext: Uint8Array | AsyncIterable<Uint8Array>;
  /** The most plaintext accepted (`maxClipBytes`): it also bounds the memory a write uses. */
  maxBytes: number;
  /**
   * The disk was full (ENOSPC, EDQUOT) while writing. Called once with
   * `retrying: true` and the space the write needs; it frees space, and the
   * same ciphertext is written again. A second full disk calls it with
   * `retrying: false` and fails the write with StoreError('storage-full').
   */
  onFull: (code: string, retrying: boolean, needBytes: number) => Promise<void>;
}

/** The ciphertext written: its size and SHA-256 (hex). */
export interface Written {
  bytes: number;
  sha256: string;
  /** A full disk was survived once (the commit gets no second chance). */
  retried: boolean;
}

/** Room asked for beyond the ciphertext itself (the directory, the index). */
const SLACK_BYTES = 64 * 1024;

/**
 * Encrypts plaintext to the recipients with age (STREAM, 64 KiB chunks) into
 * a durable temporary file (common/durable-file.ts). The ciphertext chunks
 * are kept in memory until the file is complete, so that a full disk can be
 * survived once: the partial file is deleted, `onFull` frees space, and the
 * same ciphertext is written again.
 */
export async function encryptToFile(o: EncryptToFileOptions): Promise<Written> {
  const { plaintext, maxBytes } = o;
  if (plaintext instanceof Uint8Array && plaintext.length > maxBytes) {
    throw new StoreError('too-large', `${plaintext.length} bytes exceeds maxClipBytes (${maxBytes})`);
  }
  const encrypter = new Encrypter();
  for (const r of o.recipients) encrypter.addRecipient(r);
  const ciphertext = await encrypter.encrypt(plaintextStream(plaintext, maxBytes));
  const expected = plaintext instanceof Uint8Array ? ciphertext.size(plaintext.length) : 0;
  const reader = ciphertext.getReader();
  const hash = createHash('sha256');
  const kept: Uint8Array[] = [];
  let bytes = 0;
  let sourceDone = false;
  let retried = false;
  try {
    for (;;) {
      try {
        await writeTemporary(o.fs, o.tmp, 0o600, async (file) => {
          for (const c of kept) await file.write(c); // the same ciphertext again after a full disk
          while (!sourceDone) {
            const r = await readSource(reader);
            if (r.done) {
              sourceDone = true;
              break;
            }
            hash.update(r.value);
            kept.push(r.value);
            bytes += r.value.length;
            await file.write(r.value);
          }
        });
        return { bytes, sha256: hash.digest('hex'), retried };
      } catch (e) {
        if (!isFull(e)) throw e;
        const code = String((e as { code?: unknown }).code);
        await o.onFull(code, !retried, Math.max(bytes, expected) + SLACK_BYTES);
        if (retried)
          throw new StoreError('storage-full', `storage full (${code}) after evicting`, { cause: e });
        retried = true;
      }
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  } finally {
    kept.length = 0;
  }
}

/** Wraps a read so that a failing source surfaces as a typed error. */
async function readSource(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>> {
  try {
    return await reader.read();
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError(
      'source-failed',
      `reading the plaintext failed: ${(e as Error)?.message ?? String(e)}`,
      {
        cause: e,
      },
    );
  }
}

/** age encrypts in 64 KiB chunks; handing it one at a time keeps each synchronous step short. */
const SLICE = 64 * 1024;

/**
 * Plaintext as a pull-based stream of slices of at most 64 KiB, refusing more than `max` bytes.
 * Pull-based with no buffering: the encryption advances only as fast as the disk takes the
 * ciphertext, and every slice is separated by an awaited write, so a large clip never blocks the
 * event loop for more than one chunk's encryption (about 1 ms on a slow core).
 */
function plaintextStream(
  src: Uint8Array | AsyncIterable<Uint8Array>,
  max: number,
): ReadableStream<Uint8Array> {
  const it: AsyncIterator<Uint8Array> | undefined =
    src instanceof Uint8Array ? undefined : src[Symbol.asyncIterator]();
  let pending: Uint8Array | undefined = src instanceof Uint8Array ? src : undefined;
  let sourceDone = it === undefined;
  let total = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        while ((pending === undefined || pending.length === 0) && !sourceDone && it !== undefined) {
          const r = await it.next();
          if (r.done) {
            sourceDone = true;
            break;
          }
          if (!(r.value instanceof Uint8Array)) {
            throw new StoreError('source-failed', 'plaintext chunk is not a Uint8Array');
          }
          total += r.value.length;
          if (total > max) {
            await it.return?.();
            throw new StoreError('too-large', `clip exceeds maxClipBytes (${max})`);
          }
          pending = r.value;
        }
        if (pending === undefined || pending.length === 0) {
          c.close();
          return;
        }
        c.enqueue(pending.subarray(0, SLICE));
        pending = pending.subarray(SLICE);
      },
      async cancel() {
        await it?.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}
