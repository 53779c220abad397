import { createReadStream } from 'node:fs';
import { DecryptError, decryptTo } from './decrypt.js';
import { type ChunkRejects, type Fetched, type FetchOptions, fetchItem } from './fetch.js';
import { FileFollower } from './follow.js';

export interface FetchedAndDecrypted {
  fetched: Fetched & { rejects: ChunkRejects };
  /** The plaintext's length, in `tmp`, when decryption succeeded. */
  plaintextBytes?: number;
  /** Why decryption failed (the ciphertext is kept all the same). */
  decryptError?: DecryptError;
}

/**
 * Fetches an item into the hub's store and decrypts it into `tmp` while its
 * chunks arrive: the decryption follows the partial file as it grows
 * (FileFollower), so the plaintext is ready soon after the last chunk
 * instead of one more pass later. Every age chunk is authenticated as it is
 * decrypted; `tmp` counts only once the fetch has also checked the whole
 * file's SHA-256, and is deleted when the fetch fails. An object already in
 * the store is decrypted from there. A failed fetch throws its FetchError; a
 * failed decryption is returned, with the ciphertext kept.
 */
export async function fetchAndDecrypt(
  o: FetchOptions,
  identities: readonly string[],
  tmp: string,
): Promise<FetchedAndDecrypted> {
  let follower: FileFollower | undefined;
  let decrypting: Promise<number> | undefined;
  let fetched: FetchedAndDecrypted['fetched'];
  try {
    fetched = await fetchItem({
      ...o,
      onTransfer: (path) => {
        o.onTransfer?.(path);
        follower = new FileFollower(path);
        decrypting = decryptTo(follower, tmp, identities);
        // Awaited below; a failure before then must not be an unhandled rejection.
        decrypting.catch(() => undefined);
      },
      onProgress: (n, total) => {
        o.onProgress?.(n, total);
        follower?.grown();
      },
    });
  } catch (err) {
    follower?.fail(err as Error);
    await decrypting?.catch(() => undefined);
    throw err;
  }
  follower?.end();
  try {
    const plaintextBytes = await (decrypting ?? decryptTo(createReadStream(fetched.path), tmp, identities));
    return { fetched, plaintextBytes };
  } catch (err) {
    if (err instanceof DecryptError) return { fetched, decryptError: err };
    throw err;
  }
}
