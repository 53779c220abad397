import {
  createCipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
} from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { bech32 } from '@scure/base';
import { Decrypter } from 'age-encryption';
import { ageRecipientProblem } from '../../proto/index.js';

/**
 * Gives one more person an age file without decrypting its contents and
 * without touching them: the file key is unwrapped from the header with the
 * owner's identity, wrapped again for the requester's X25519 recipient in a
 * new header (with the MAC that key makes), and the new header is put in
 * front of the unchanged payload. Sound because age derives both the header
 * MAC key and the payload key from the per-file random file key (age v1
 * spec: HKDF-SHA-256 with the labels "header" and "payload", the latter
 * salted with the file's nonce): holding it opens this file and no other,
 * and a new header changes nothing the payload depends on. The owner's own
 * stanzas are left out, so the requester learns nothing about them.
 */

const VERSION_LINE = 'age-encryption.org/v1\n';
const X25519_LABEL = 'age-encryption.org/v1/X25519';
/** A header larger than this is not one of ours (one stanza is about 100 bytes). */
const MAX_HEADER_BYTES = 64 * 1024;

export class RewrapError extends Error {
  override readonly name = 'RewrapError';
  constructor(
    readonly kind: 'not-age' | 'no-identity' | 'bad-recipient',
    message: string,
  ) {
    super(message);
  }
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64').replace(/=+$/, '');

/** The 32-byte X25519 public key of an `age1...` recipient. */
function recipientKey(recipient: string): Buffer {
  const problem = ageRecipientProblem(recipient);
  if (problem !== undefined) throw new RewrapError('bad-recipient', problem);
  const { prefix, bytes } = bech32.decodeToBytes(recipient);
  if (prefix !== 'age' || bytes.length !== 32)
    throw new RewrapError('bad-recipient', 'not an X25519 recipient');
  return Buffer.from(bytes);
}

/** One X25519 stanza wrapping `fileKey` for `recipient` (age v1 spec, "X25519 recipient stanza"). */
function x25519Stanza(fileKey: Uint8Array, recipient: string): string {
  const theirs = recipientKey(recipient);
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const ephemeral = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const peer = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), theirs]),
    format: 'der',
    type: 'spki',
  });
  const shared = diffieHellman({ privateKey, publicKey: peer });
  if (shared.every((b) => b === 0)) throw new RewrapError('bad-recipient', 'a low-order recipient key');
  const salt = Buffer.concat([ephemeral, theirs]);
  const wrapKey = Buffer.from(hkdfSync('sha256', shared, salt, X25519_LABEL, 32));
  const cipher = createCipheriv('chacha20-poly1305', wrapKey, Buffer.alloc(12), { authTagLength: 16 });
  const body = Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()]);
  // The body's base64 (43 characters) fits one line, shorter than 64: no wrapping needed.
  return `-> X25519 ${b64(ephemeral)}\n${b64(body)}\n`;
}

/** The header (version line, stanzas, MAC line) of an age file: its bytes and where the payload starts. */
export function splitHeader(start: Uint8Array): { header: Buffer; payloadOffset: number } {
  const text = Buffer.from(start).toString('latin1');
  if (!text.startsWith(VERSION_LINE)) throw new RewrapError('not-age', 'not an age v1 file');
  const mac = text.indexOf('\n--- ');
  const end = mac < 0 ? -1 : text.indexOf('\n', mac + 1);
  if (end < 0) throw new RewrapError('not-age', 'no header MAC line within the first 64 KiB');
  return { header: Buffer.from(start.subarray(0, end + 1)), payloadOffset: end + 1 };
}

/** A header for `recipients` only, for the file key `fileKey`, with its MAC. */
export function headerFor(fileKey: Uint8Array, recipients: readonly string[]): Buffer {
  let text = VERSION_LINE;
  for (const r of recipients) text += x25519Stanza(fileKey, r);
  text += '---';
  const macKey = Buffer.from(hkdfSync('sha256', fileKey, Buffer.alloc(0), 'header', 32));
  const mac = createHmac('sha256', macKey).update(text, 'latin1').digest();
  return Buffer.from(`${text} ${b64(mac)}\n`, 'latin1');
}

/**
 * Writes `output`: `input` re-addressed to `recipients` (and no one else),
 * its payload byte for byte. `identities` must open `input` (the owner's).
 * Streams: memory stays flat whatever the size. Written to `<output>.part`
 * and renamed, so a failure leaves nothing behind.
 */
export async function rewrapFile(
  input: string,
  output: string,
  identities: readonly string[],
  recipients: readonly string[],
): Promise<{ payloadOffset: number; headerBytes: number }> {
  if (recipients.length === 0) throw new RewrapError('bad-recipient', 'no recipient');
  const handle = await open(input, 'r');
  let start: Buffer;
  try {
    start = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await handle.read(start, 0, MAX_HEADER_BYTES, 0);
    start = start.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const { header, payloadOffset } = splitHeader(start);
  const decrypter = new Decrypter();
  for (const id of identities) decrypter.addIdentity(id);
  let fileKey: Uint8Array;
  try {
    fileKey = await decrypter.decryptHeader(header);
  } catch (err) {
    throw new RewrapError('no-identity', `the owner's identities do not open it: ${(err as Error).message}`);
  }
  const fresh = headerFor(fileKey, recipients);
  const tmp = `${output}.part`;
  try {
    const out = createWriteStream(tmp, { mode: 0o600 });
    out.write(fresh);
    await pipeline(createReadStream(input, { start: payloadOffset }), out);
    await rename(tmp, output);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return { payloadOffset, headerBytes: fresh.length };
}
