import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileDurably } from '../common/durable-file.js';

/**
 * Ed25519 keys of the wire contract. Every key is parsed into `KeyObject`s
 * once, when it is created or loaded, and reused for every signature.
 */

/** A public key that can verify envelopes. */
export interface VerifyKey {
  /** Hex of the first 8 bytes of SHA-256 over `publicRaw` (16 characters); `Envelope.key_id`. */
  readonly keyId: string;
  readonly publicKey: KeyObject;
  /** The raw 32-byte Ed25519 public key. */
  readonly publicRaw: Buffer;
}

/** A key pair that can also seal envelopes. */
export interface SigningKey extends VerifyKey {
  readonly privateKey: KeyObject;
}

/** A malformed textual public key; the message names the problem. */
export class KeyFormatError extends TypeError {
  override readonly name = 'KeyFormatError';
}

export const PUBLIC_KEY_TEXT_PREFIX = 'ed25519:';
const RAW_KEY_BYTES = 32;
/** base64url without padding of 32 bytes. */
const RAW_KEY_TEXT_CHARS = 43;

/** The key id of a raw public key: hex of the first 8 bytes of its SHA-256 (16 characters). */
export function keyIdOf(publicRaw: Uint8Array): string {
  if (publicRaw.length !== RAW_KEY_BYTES) {
    throw new KeyFormatError(
      `raw Ed25519 public key must be ${RAW_KEY_BYTES} bytes, got ${publicRaw.length}`,
    );
  }
  return createHash('sha256').update(publicRaw).digest().subarray(0, 8).toString('hex');
}

/** A VerifyKey from a raw 32-byte Ed25519 public key. */
export function verifyKeyFromRaw(publicRaw: Uint8Array): VerifyKey {
  const keyId = keyIdOf(publicRaw);
  const raw = Buffer.from(publicRaw);
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
  return { keyId, publicKey, publicRaw: raw };
}

/** The public half of a key pair, without the private key. */
export function verifyKeyOf(key: VerifyKey): VerifyKey {
  return { keyId: key.keyId, publicKey: key.publicKey, publicRaw: key.publicRaw };
}

/** Builds a SigningKey from a parsed private key; throws a TypeError unless it is Ed25519. */
export function signingKeyFromPrivate(privateKey: KeyObject): SigningKey {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(
      `expected an Ed25519 private key, got a ${privateKey.asymmetricKeyType ?? 'symmetric'} ${privateKey.type} key`,
    );
  }
  const publicKey = createPublicKey(privateKey);
  const publicRaw = rawOf(publicKey);
  return { keyId: keyIdOf(publicRaw), publicKey, publicRaw, privateKey };
}

/** A fresh random Ed25519 key pair. */
export function generateSigningKey(): SigningKey {
  return signingKeyFromPrivate(generateKeyPairSync('ed25519').privateKey);
}

/** `ed25519:` + base64url (no padding) of the raw 32-byte public key. */
export function publicKeyToText(key: VerifyKey): string {
  return PUBLIC_KEY_TEXT_PREFIX + key.publicRaw.toString('base64url');
}

/** Parses `publicKeyToText` output strictly; throws KeyFormatError naming the problem. */
export function publicKeyFromText(text: string): VerifyKey {
  if (typeof text !== 'string')
    throw new KeyFormatError(`public key text must be a string, got ${typeof text}`);
  if (!text.startsWith(PUBLIC_KEY_TEXT_PREFIX)) {
    throw new KeyFormatError(`public key text must start with "${PUBLIC_KEY_TEXT_PREFIX}"`);
  }
  const encoded = text.slice(PUBLIC_KEY_TEXT_PREFIX.length);
  if (encoded.length !== RAW_KEY_TEXT_CHARS) {
    throw new KeyFormatError(
      `public key text must have ${RAW_KEY_TEXT_CHARS} base64url characters after the prefix, got ${encoded.length}`,
    );
  }
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) {
    throw new KeyFormatError('public key text must use the base64url alphabet [A-Za-z0-9_-] without padding');
  }
  const raw = Buffer.from(encoded, 'base64url');
  // The last character carries 2 unused bits; a non-canonical encoding would
  // give a second spelling of the same key.
  if (raw.length !== RAW_KEY_BYTES || raw.toString('base64url') !== encoded) {
    throw new KeyFormatError('public key text is not the canonical base64url encoding of 32 bytes');
  }
  try {
    return verifyKeyFromRaw(raw);
  } catch (err) {
    throw new KeyFormatError(`public key text is not a valid Ed25519 key: ${(err as Error).message}`);
  }
}

/** The SPKI PEM of the public key, e.g. for `openssl pkeyutl -verify -pubin`. */
export function publicKeyToPem(key: VerifyKey): string {
  return key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

/** The PKCS#8 PEM of the private key. Handle with care. */
export function privateKeyToPem(key: SigningKey): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Parses a PKCS#8 PEM; throws a TypeError unless it holds an Ed25519 private key. */
export function signingKeyFromPem(pem: string): SigningKey {
  return signingKeyFromPrivate(createPrivateKey({ key: pem, format: 'pem' }));
}

function rawOf(publicKey: KeyObject): Buffer {
  const { x } = publicKey.export({ format: 'jwk' });
  if (typeof x !== 'string') throw new TypeError('Ed25519 public key has no "x" coordinate');
  return Buffer.from(x, 'base64url');
}

/** Why a key file was refused. */
export type KeyFileProblem = 'insecure-permissions' | 'not-a-file' | 'not-ed25519';

/** A key file that exists but must not be used; nothing is overwritten. */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
  constructor(
    readonly problem: KeyFileProblem,
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/** An Ed25519 PKCS#8 PEM key is about 120 bytes; anything near this is not one. */
export const MAX_KEY_FILE_BYTES = 4096;

/**
 * Loads the PKCS#8 PEM signing key at `path`. Refuses (KeyFileError) a file
 * that group or others may access in any way, that is not a regular file, or
 * that does not hold an Ed25519 private key. A missing file rejects with the
 * ENOENT error of `open`, a symbolic link with ELOOP (never followed).
 */
export async function loadSigningKey(path: string): Promise<SigningKey> {
  const file = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  let pem: string;
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw new KeyFileError('not-a-file', path, 'key path is not a regular file');
    if ((stat.mode & 0o077) !== 0) {
      throw new KeyFileError(
        'insecure-permissions',
        path,
        `key file mode is ${(stat.mode & 0o777).toString(8).padStart(4, '0')}; group and others must have no access (chmod 600)`,
      );
    }
    if (stat.size > MAX_KEY_FILE_BYTES) {
      throw new KeyFileError(
        'not-ed25519',
        path,
        `key file is ${stat.size} bytes; an Ed25519 PEM key is under ${MAX_KEY_FILE_BYTES}`,
      );
    }
    pem = await file.readFile('utf8');
  } finally {
    await file.close();
  }
  try {
    return signingKeyFromPem(pem);
  } catch (err) {
    throw new KeyFileError(
      'not-ed25519',
      path,
      `not an Ed25519 PKCS#8 private key: ${(err as Error).message}`,
    );
  }
}

/**
 * Loads the signing key at `path`, or creates one there if the file does not
 * exist: the parent directory is created with mode 0700, the PEM is written to
 * a temporary file with mode 0600, synced, and renamed into place.
 */
export async function loadOrCreateSigningKey(path: string): Promise<{ key: SigningKey; created: boolean }> {
  try {
    return { key: await loadSigningKey(path), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const key = generateSigningKey();
  await writeFileDurably(path, privateKeyToPem(key), 0o600);
  return { key, created: true };
}
