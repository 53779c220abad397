import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, stat, unlink } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Decrypter } from 'age-encryption';
import { type ItemMeta, ItemMetaError, MAX_SEALED_META_BYTES, parseItemMeta } from '../../proto/item-meta.js';

/** An identity file larger than this is not one (age-keygen writes about 190 bytes). */
const MAX_IDENTITY_FILE_BYTES = 64 * 1024;

export type DecryptErrorKind = 'identity-file' | 'no-identity' | 'damaged';

export class DecryptError extends Error {
  override readonly name = 'DecryptError';
  constructor(
    readonly kind: DecryptErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads an age identity file as `age-keygen` writes it: `AGE-SECRET-KEY-1...`
 * lines, `#` comments and blank lines.
 */
export async function readIdentityFile(path: string): Promise<string[]> {
  let text: string;
  try {
    if ((await stat(path)).size > MAX_IDENTITY_FILE_BYTES) throw new Error('larger than 64 KiB');
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DecryptError(
      'identity-file',
      `cannot read the identity file ${path}: ${(err as Error).message}`,
    );
  }
  const keys: string[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!/^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(line)) {
      throw new DecryptError(
        'identity-file',
        `${path}:${i + 1} is not an age secret key (AGE-SECRET-KEY-1...)`,
      );
    }
    keys.push(line);
  }
  if (keys.length === 0) throw new DecryptError('identity-file', `${path} holds no age secret key`);
  return keys;
}

/**
 * Decrypts an age file to `output`, streaming (age's 64 KiB STREAM chunks:
 * memory stays flat whatever the size). The plaintext is written to
 * `<output>.part` and renamed only once every chunk authenticated, so a
 * wrong key or a damaged file leaves no partial plaintext behind.
 */
export async function decryptFile(
  input: string,
  output: string,
  identities: readonly string[],
): Promise<number> {
  const tmp = `${output}.part`;
  const bytes = await decryptTo(createReadStream(input), tmp, identities);
  await rename(tmp, output);
  return bytes;
}

/**
 * Decrypts age ciphertext from `source` into the file `tmp`, streaming, and
 * resolves with the plaintext's length once every chunk authenticated; on
 * any failure deletes `tmp` and throws a DecryptError. The caller renames
 * `tmp` when it has also checked what it must (the whole file's hash).
 */
export async function decryptTo(
  source: AsyncIterable<Uint8Array>,
  tmp: string,
  identities: readonly string[],
): Promise<number> {
  const decrypter = new Decrypter();
  for (const id of identities) decrypter.addIdentity(id);
  // A file stream is handed over as it is; anything else through one Readable (no second queue).
  const readable = source instanceof Readable ? source : Readable.from(source, { objectMode: false });
  const web = Readable.toWeb(readable) as unknown as ReadableStream<Uint8Array>;
  let plain: ReadableStream<Uint8Array>;
  try {
    plain = await decrypter.decrypt(web);
  } catch (err) {
    await web.cancel().catch(() => undefined);
    const message = (err as Error).message;
    if (/no identity matched/i.test(message)) {
      throw new DecryptError('no-identity', 'none of the given identities is a recipient of this item');
    }
    throw new DecryptError('damaged', `not a readable age file: ${message}`);
  }
  let bytes = 0;
  try {
    await pipeline(
      Readable.fromWeb(plain as unknown as WebReadableStream<Uint8Array>),
      async function* (chunks: AsyncIterable<Uint8Array>) {
        for await (const c of chunks) {
          bytes += c.length;
          yield c;
        }
      },
      createWriteStream(tmp, { mode: 0o600 }) as Writable,
    );
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new DecryptError('damaged', `decryption failed part-way: ${(err as Error).message}`);
  }
  return bytes;
}

/**
 * Opens an item's sealed metadata (proto/item-meta.ts) with the owner's
 * identities and checks it belongs to the item: when it was recorded, its
 * kind and trigger, which only an owner can read. A DecryptError when the
 * identities cannot open it or it is damaged or belongs elsewhere.
 */
export async function openItemMeta(
  item: { id: string; sha256: string; meta: Uint8Array | undefined },
  identities: readonly string[],
): Promise<ItemMeta> {
  if (item.meta === undefined || item.meta.length === 0)
    throw new DecryptError('damaged', `item ${item.id} has no metadata`);
  if (item.meta.length > MAX_SEALED_META_BYTES)
    throw new DecryptError(
      'damaged',
      `item ${item.id}'s metadata is larger than ${MAX_SEALED_META_BYTES} bytes`,
    );
  const d = new Decrypter();
  for (const i of identities) d.addIdentity(i);
  let plain: Uint8Array;
  try {
    plain = await d.decrypt(item.meta);
  } catch (err) {
    const msg = (err as Error)?.message ?? String(err);
    throw /no identity matched/i.test(msg)
      ? new DecryptError('no-identity', `none of the identities opens item ${item.id}'s metadata`)
      : new DecryptError('damaged', `item ${item.id}'s metadata is damaged: ${msg}`);
  }
  try {
    return parseItemMeta(plain, item);
  } catch (err) {
    throw new DecryptError('damaged', err instanceof ItemMetaError ? err.message : String(err));
  }
}
