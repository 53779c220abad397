import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  generateSigningKey,
  KeyFileError,
  KeyFormatError,
  keyIdOf,
  loadOrCreateSigningKey,
  loadSigningKey,
  publicKeyFromText,
  publicKeyToPem,
  publicKeyToText,
} from './keys.js';

describe('keys', () => {
  test('a generated key signs, and its public half verifies', () => {
    const key = generateSigningKey();
    assert.equal(key.publicRaw.length, 32);
    const sig = sign(null, Buffer.from('hello'), key.privateKey);
    assert.ok(verify(null, Buffer.from('hello'), key.publicKey, sig));
    assert.notEqual(generateSigningKey().keyId, key.keyId);
  });

  test('keyIdOf is hex of the first 8 bytes of SHA-256 of the raw key', () => {
    const key = generateSigningKey();
    const expected = createHash('sha256').update(key.publicRaw).digest('hex').slice(0, 16);
    assert.equal(key.keyId, expected);
    assert.equal(keyIdOf(key.publicRaw), expected);
    assert.throws(() => keyIdOf(new Uint8Array(31)), KeyFormatError);
  });

  test('text form round trips', () => {
    const key = generateSigningKey();
    const text = publicKeyToText(key);
    assert.match(text, /^ed25519:[A-Za-z0-9_-]{43}$/);
    const back = publicKeyFromText(text);
    assert.equal(back.keyId, key.keyId);
    assert.deepEqual(back.publicRaw, key.publicRaw);
    const sig = sign(null, Buffer.from('x'), key.privateKey);
    assert.ok(verify(null, Buffer.from('x'), back.publicKey, sig));
  });

  test('malformed texts are rejected with a KeyFormatError naming the problem', () => {
    const good = publicKeyToText(generateSigningKey());
    const body = good.slice('ed25519:'.length);
    // The last of 43 characters carries 4 data bits and 2 padding bits; 'B' sets one of those.
    const nonCanonical = `ed25519:${'A'.repeat(42)}B`;
    const cases: [string, RegExp][] = [
      [body, /start with "ed25519:"/],
      [`ED25519:${body}`, /start with "ed25519:"/],
      [`x25519:${body}`, /start with/],
      [`ed25519:${body.slice(1)}`, /43 base64url characters/],
      [`ed25519:${body}A`, /43 base64url characters/],
      [`ed25519:${body.slice(0, 42)}=`, /base64url alphabet/],
      [`ed25519:${body.slice(0, 42)}+`, /base64url alphabet/],
      [`ed25519:${body.slice(0, 42)} `, /base64url alphabet/],
      [nonCanonical, /canonical/],
      ['', /start with/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => publicKeyFromText(text),
        (err: unknown) =>
          err instanceof KeyFormatError && err instanceof TypeError && message.test(err.message),
        text,
      );
    }
  });

  test('publicKeyToPem is an SPKI PEM', () => {
    const pem = publicKeyToPem(generateSigningKey());
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
  });
});

describe('key files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'proto-keys-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('created with mode 0600 in a 0700 directory, then loaded unchanged', async () => {
    const path = join(dir, 'state', 'nested', 'identity.pem');
    const first = await loadOrCreateSigningKey(path);
    assert.equal(first.created, true);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'state', 'nested'))).mode & 0o777, 0o700);
    assert.match(await readFile(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    const second = await loadOrCreateSigningKey(path);
    assert.equal(second.created, false);
    assert.equal(second.key.keyId, first.key.keyId);
    assert.equal((await loadSigningKey(path)).keyId, first.key.keyId);
  });

  test('a group- or world-readable key file is refused and left alone', async () => {
    const path = join(dir, 'loose.pem');
    await loadOrCreateSigningKey(path);
    const before = await readFile(path, 'utf8');
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      await chmod(path, mode);
      await assert.rejects(
        loadOrCreateSigningKey(path),
        (err: unknown) =>
          err instanceof KeyFileError && err.problem === 'insecure-permissions' && err.message.includes(path),
      );
    }
    assert.equal(await readFile(path, 'utf8'), before);
  });

  test('an oversized key file is refused without reading it as a key', async () => {
    const path = join(dir, 'huge.pem');
    await writeFile(path, 'A'.repeat(1 << 20), { mode: 0o600 });
    await assert.rejects(
      loadSigningKey(path),
      (err: unknown) =>
        err instanceof KeyFileError && err.problem === 'not-ed25519' && /bytes/.test(err.message),
    );
  });

  test('a key file that is not an Ed25519 private key is refused', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    for (const [name, content] of [
      ['ec.pem', ec.toString()],
      ['garbage.pem', 'not a key\n'],
    ] as const) {
      const path = join(dir, name);
      await writeFile(path, content, { mode: 0o600 });
      await assert.rejects(
        loadSigningKey(path),
        (err: unknown) => err instanceof KeyFileError && err.problem === 'not-ed25519',
      );
      await assert.rejects(loadOrCreateSigningKey(path), KeyFileError);
    }
  });

  test('loadSigningKey of a missing file rejects with ENOENT', async () => {
    await assert.rejects(loadSigningKey(join(dir, 'missing.pem')), { code: 'ENOENT' });
  });
});
