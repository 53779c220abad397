import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { generateSigningKey, type SigningKey, verifyKeyFromRaw } from '../keys.js';
import { EMPTY_ROOT, leafHash, rootOf } from './merkle.js';
import {
  formatCheckpoint,
  NoteError,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signNote,
  verifierKeyText,
} from './note.js';

// The worked example of Go's golang.org/x/mod/sumdb/note (the reference
// implementation of signed-note): its keys, its text and its published note.
// Ed25519 is deterministic, so signing the same text must give the same bytes.
const GO_SIGNER = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_VERIFIER = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

/** The Go example's signing key, from its seed (after the 0x01 type byte). */
function goSigningKey(): SigningKey {
  // The key material is everything after the fourth '+' (base64 may itself hold a '+').
  const material = GO_SIGNER.split('+').slice(4).join('+');
  const seed = Buffer.from(material, 'base64').subarray(1);
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const spki = Buffer.from(privateKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  return { ...verifyKeyFromRaw(spki), privateKey };
}

test('signing the Go reference example gives its published note byte for byte, and its verifier key', () => {
  const key = goSigningKey();
  assert.equal(verifierKeyText('PeterNeumann', key), GO_VERIFIER);
  assert.equal(signNote(GO_TEXT, 'PeterNeumann', key), GO_NOTE);
  assert.equal(openNote(GO_NOTE, parseVerifierKey(GO_VERIFIER)), GO_TEXT);
});

test('a changed text, another key of the same name, or no signature by the key is refused', () => {
  const verifier = parseVerifierKey(GO_VERIFIER);
  assert.throws(() => openNote(GO_NOTE.replace('cryptography', 'cryptographY'), verifier), /does not verify/);
  const other = generateSigningKey();
  assert.throws(
    () => openNote(signNote(GO_TEXT, 'PeterNeumann', other), verifier),
    /no signature by PeterNeumann/,
  );
  // A cosignature by another key is skipped; the note still opens with the right one.
  const cosigned = `${GO_NOTE}\u2014 Witness ${Buffer.alloc(68, 7).toString('base64')}\n`;
  assert.equal(openNote(cosigned, verifier), GO_TEXT);
});

test('malformed verifier keys and notes are NoteErrors', () => {
  for (const bad of [
    'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // hash of another key
    'PeterNeumann+c74f20a3+AhpckQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', // not type 0x01
    'PeterNeumann+c74f20a3',
    'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
  ])
    assert.throws(() => parseVerifierKey(bad), NoteError, bad);
  const verifier = parseVerifierKey(GO_VERIFIER);
  for (const bad of [
    GO_TEXT,
    GO_NOTE.slice(0, -1),
    GO_NOTE.replace('\u2014', '-'),
    `\n${GO_NOTE}`,
    'x'.repeat(20_000),
  ])
    assert.throws(() => openNote(bad, verifier), NoteError);
  assert.throws(() => signNote('no newline', 'a', generateSigningKey()), NoteError);
  assert.throws(() => signNote('a\n\nb\n', 'a', generateSigningKey()), NoteError);
});

test('a checkpoint is origin, size and base64 root, a line each; parsing gives back what was formatted', () => {
  const root = rootOf([leafHash(Buffer.from('a')), leafHash(Buffer.from('b'))]);
  const text = formatCheckpoint({ origin: 'open-doorbell.org/porch', size: 2, root });
  assert.equal(text, `open-doorbell.org/porch\n2\n${root.toString('base64')}\n`);
  assert.deepEqual(parseCheckpoint(text), { origin: 'open-doorbell.org/porch', size: 2, root });
  const key = generateSigningKey();
  const note = signNote(text, 'porch', key);
  assert.deepEqual(
    parseCheckpoint(openNote(note, parseVerifierKey(verifierKeyText('porch', key)))).root,
    root,
  );
  const withExt = formatCheckpoint({ origin: 'o', size: 0, root: EMPTY_ROOT, extensions: ['ext one'] });
  assert.deepEqual(parseCheckpoint(withExt).extensions, ['ext one']);
  for (const bad of [`o\n01\n${EMPTY_ROOT.toString('base64')}\n`, 'o\n1\nAAAA\n', 'o\n1\n', 'o\n-1\nx\n'])
    assert.throws(() => parseCheckpoint(bad), NoteError, JSON.stringify(bad));
});

test('property: any note text signs and opens to itself; arbitrary input never throws anything but NoteError', () => {
  const key = generateSigningKey();
  const verifier = parseVerifierKey(verifierKeyText('fuzz', key));
  fc.assert(
    fc.property(fc.array(fc.stringMatching(/^[ -~]{1,40}$/), { minLength: 1, maxLength: 5 }), (lines) => {
      const text = `${lines.join('\n')}\n`;
      assert.equal(openNote(signNote(text, 'fuzz', key), verifier), text);
    }),
    { numRuns: 200, seed: 20261204 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) => {
      for (const run of [() => openNote(s, verifier), () => parseCheckpoint(s), () => parseVerifierKey(s)]) {
        try {
          run();
        } catch (err) {
          if (!(err instanceof NoteError)) throw err;
        }
      }
    }),
    { numRuns: 500, seed: 20261204 },
  );
});
