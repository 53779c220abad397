import { createHash, sign, verify } from 'node:crypto';
import { type SigningKey, type VerifyKey, verifyKeyFromRaw } from '../keys.js';

/**
 * C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 keys, and the
 * C2SP tlog-checkpoint body it carries: the formats the device's transparency
 * log publishes, so that any standard verifier (Go's sumdb/note, witnesses)
 * can check them. Everything read is size-capped and checked before use.
 */

/** Ed25519 signature type byte of signed-note. */
const ED25519 = 0x01;
/** U+2014 EM DASH, then a space: how every signature line begins. */
const SIG_PREFIX = '\u2014 ';
export const MAX_NOTE_BYTES = 16 * 1024;
const MAX_SIGNATURES = 100;

export class NoteError extends Error {
  override readonly name = 'NoteError';
}

/** A key name: non-empty, no spaces, no '+', printable. */
function checkName(name: string): void {
  if (name.length === 0 || name.length > 256 || !/^[\x21-\x7e]+$/.test(name) || name.includes('+'))
    throw new NoteError(
      `key name ${JSON.stringify(name.slice(0, 40))} must be printable ASCII without spaces or '+'`,
    );
}

/** The 4-byte key hash: SHA-256(name || "\n" || 0x01 || public key)[:4]. */
export function keyHash(name: string, publicRaw: Uint8Array): Buffer {
  return createHash('sha256')
    .update(name)
    .update('\n')
    .update(Uint8Array.of(ED25519))
    .update(publicRaw)
    .digest()
    .subarray(0, 4);
}

/** A verifier key as signed-note writes it: `<name>+<hex key hash>+<base64(0x01 || public key)>`. */
export function verifierKeyText(name: string, key: VerifyKey): string {
  checkName(name);
  const material = Buffer.concat([Uint8Array.of(ED25519), key.publicRaw]).toString('base64');
  return `${name}+${keyHash(name, key.publicRaw).toString('hex')}+${material}`;
}

export interface NoteVerifier {
  name: string;
  hash: Buffer;
  key: VerifyKey;
}

/** Parses a verifier key; its hash must match its name and key. */
export function parseVerifierKey(text: string): NoteVerifier {
  const first = text.indexOf('+');
  const second = text.indexOf('+', first + 1);
  if (first < 0 || second < 0) throw new NoteError('a verifier key is <name>+<hash>+<key>');
  const name = text.slice(0, first);
  checkName(name);
  const hashHex = text.slice(first + 1, second);
  if (!/^[0-9a-f]{8}$/.test(hashHex)) throw new NoteError('the key hash must be 8 lowercase hex digits');
  const material = Buffer.from(text.slice(second + 1), 'base64');
  if (material.toString('base64') !== text.slice(second + 1))
    throw new NoteError('the key is not canonical base64');
  if (material.length !== 33 || material[0] !== ED25519)
    throw new NoteError('only Ed25519 verifier keys are accepted');
  const publicRaw = material.subarray(1);
  const hash = keyHash(name, publicRaw);
  if (hash.toString('hex') !== hashHex) throw new NoteError('the key hash does not match the name and key');
  return { name, hash, key: verifyKeyFromRaw(publicRaw) };
}

/** Note text: non-empty UTF-8 lines, each ending in "\n", no blank line, no control characters. */
function checkText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('note text must end with a newline');
  if (text.includes('\n\n') || text.startsWith('\n'))
    throw new NoteError('note text must not contain a blank line');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\x00-\x09\x0b-\x1f\x7f]/.test(text))
    throw new NoteError('note text must not contain control characters');
}

/** Signs `text` as `name`: the note, its blank line and one signature line. */
export function signNote(text: string, name: string, key: SigningKey): string {
  checkText(text);
  checkName(name);
  const signature = sign(null, Buffer.from(text, 'utf8'), key.privateKey);
  const blob = Buffer.concat([keyHash(name, key.publicRaw), signature]).toString('base64');
  return `${text}\n${SIG_PREFIX}${name} ${blob}\n`;
}

/**
 * Opens a signed note: returns its text once a signature by `verifier`
 * verifies. Signatures by other keys are skipped (a note may carry
 * cosignatures); a malformed note, or none by this key, is a NoteError.
 */
export function openNote(note: string, verifier: NoteVerifier): string {
  if (Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES)
    throw new NoteError(`a note is at most ${MAX_NOTE_BYTES} bytes`);
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('no blank line before the signatures');
  const text = note.slice(0, split + 1);
  checkText(text);
  const lines = note.slice(split + 2);
  if (!lines.endsWith('\n')) throw new NoteError('the signatures must end with a newline');
  const sigLines = lines.slice(0, -1).split('\n');
  if (sigLines.length > MAX_SIGNATURES) throw new NoteError(`at most ${MAX_SIGNATURES} signatures`);
  let found = false;
  for (const line of sigLines) {
    if (!line.startsWith(SIG_PREFIX))
      throw new NoteError('a signature line begins with an em dash and a space');
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.lastIndexOf(' ');
    if (space <= 0) throw new NoteError('a signature line is "— <name> <signature>"');
    const name = rest.slice(0, space);
    const blob = Buffer.from(rest.slice(space + 1), 'base64');
    if (blob.toString('base64') !== rest.slice(space + 1) || blob.length < 5)
      throw new NoteError('a signature is canonical base64 of at least 5 bytes');
    if (name !== verifier.name || !blob.subarray(0, 4).equals(verifier.hash)) continue;
    if (
      blob.length !== 68 ||
      !verify(null, Buffer.from(text, 'utf8'), verifier.key.publicKey, blob.subarray(4))
    )
      throw new NoteError(`the signature by ${verifier.name} does not verify`);
    found = true;
  }
  if (!found) throw new NoteError(`no signature by ${verifier.name}`);
  return text;
}

/** A C2SP tlog-checkpoint body. */
export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  /** Optional extension lines, after the root. */
  extensions?: string[];
}

/** The checkpoint's note text: origin, size and base64 root, a line each, then any extension lines. */
export function formatCheckpoint(c: Checkpoint): string {
  if (!Number.isSafeInteger(c.size) || c.size < 0)
    throw new NoteError('the tree size must be a non-negative integer');
  if (c.root.length !== 32) throw new NoteError('the root is a 32-byte SHA-256');
  const text = [c.origin, String(c.size), c.root.toString('base64'), ...(c.extensions ?? [])].join('\n');
  checkText(`${text}\n`);
  return `${text}\n`;
}

/** Parses a checkpoint's text (what openNote returns). */
export function parseCheckpoint(text: string): Checkpoint {
  checkText(text);
  const [origin, size, root, ...extensions] = text.slice(0, -1).split('\n');
  if (!origin || size === undefined || root === undefined)
    throw new NoteError('a checkpoint has an origin, a size and a root');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size)))
    throw new NoteError('the tree size is a decimal integer without leading zeros');
  const hash = Buffer.from(root, 'base64');
  if (hash.length !== 32 || hash.toString('base64') !== root)
    throw new NoteError('the root is canonical base64 of 32 bytes');
  return { origin, size: Number(size), root: hash, ...(extensions.length > 0 ? { extensions } : {}) };
}
