import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { sealCommand } from './envelope.js';
import { doorbell } from './gen/doorbell.js';
import type { HeaderFields } from './header.js';
import { generateSigningKey } from './keys.js';
import {
  devicePairingProof,
  fingerprintOf,
  formatPairingCode,
  PairingCodeError,
  pairingKey,
  pairingProof,
  pairingTranscript,
  parsePairingCode,
  proofMatches,
} from './pairing.js';
import { ReplayGuard } from './replay-guard.js';
import { openPairCommand, VerifyError } from './verify.js';

const device = generateSigningKey();
const fingerprint = fingerprintOf(device.publicRaw);
const NOW = 1_750_000_000_000;
const header: HeaderFields = {
  deviceId: 'front-door',
  topic: 'doorbell/v1/front-door/cmd',
  counter: 7,
  issuedAtMs: NOW,
  expiresAtMs: NOW + 10_000,
  correlationId: 'abc',
  keyEpoch: 0,
};

describe('pairing codes', () => {
  test('format and parse round-trip', () => {
    const code = { deviceId: 'front-door', fingerprint, secret: randomBytes(32) };
    const parsed = parsePairingCode(` ${formatPairingCode(code)}\n`);
    assert.deepEqual(parsed, code);
  });

  test('any text either parses into a well-formed code or is a PairingCodeError', () => {
    const real = formatPairingCode({ deviceId: 'front-door', fingerprint, secret: randomBytes(32) });
    const mutated = fc
      .tuple(fc.nat(real.length), fc.string({ maxLength: 3 }))
      .map(([at, s]) => real.slice(0, at) + s + real.slice(at + 1));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 400 }), mutated), (text) => {
        try {
          const code = parsePairingCode(text);
          assert.equal(code.secret.length, 32);
          assert.match(code.fingerprint, /^[0-9a-f]{64}$/);
        } catch (err) {
          assert.ok(err instanceof PairingCodeError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('pairing proofs', () => {
  const secret = randomBytes(32);
  const pair: doorbell.v1.IPair = {
    ownerPublicKey: generateSigningKey().publicRaw,
    ownerLabel: 'alice',
    hubPublicKey: generateSigningKey().publicRaw,
    hubRole: doorbell.v1.Role.OPERATE,
    hubLabel: 'hub',
    footageRecipients: ['age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq'],
    nonce: randomBytes(16),
  };

  test('the proof verifies only with the same secret, and the device proof differs from the hub proof', () => {
    const key = pairingKey(secret, fingerprint);
    const transcript = pairingTranscript(header, fingerprint, pair);
    const proof = pairingProof(key, transcript);
    assert.ok(proofMatches(proof, pairingProof(pairingKey(secret, fingerprint), transcript)));
    assert.ok(!proofMatches(proof, pairingProof(pairingKey(randomBytes(32), fingerprint), transcript)));
    assert.ok(!proofMatches(proof, devicePairingProof(key, transcript)), 'a hub proof cannot be reflected');
    assert.ok(!proofMatches(proof, proof.subarray(0, 31)));
    assert.ok(!proofMatches(proof, undefined));
  });

  test('changing any field of the transcript changes it (so the MAC covers everything)', () => {
    const base = pairingTranscript(header, fingerprint, pair);
    const variants: Array<[HeaderFields, string, doorbell.v1.IPair]> = [
      [{ ...header, deviceId: 'back-door' }, fingerprint, pair],
      [{ ...header, topic: 'doorbell/v1/front-door/evt' }, fingerprint, pair],
      [{ ...header, counter: 8 }, fingerprint, pair],
      [{ ...header, issuedAtMs: NOW + 1 }, fingerprint, pair],
      [{ ...header, expiresAtMs: NOW + 10_001 }, fingerprint, pair],
      [{ ...header, correlationId: 'abd' }, fingerprint, pair],
      [{ ...header, keyEpoch: 1 }, fingerprint, pair],
      [header, fingerprintOf(generateSigningKey().publicRaw), pair],
      [header, fingerprint, { ...pair, ownerPublicKey: generateSigningKey().publicRaw }],
      [header, fingerprint, { ...pair, ownerLabel: 'mallory' }],
      [header, fingerprint, { ...pair, hubPublicKey: new Uint8Array() }],
      [header, fingerprint, { ...pair, hubRole: doorbell.v1.Role.ADMINISTER }],
      [header, fingerprint, { ...pair, hubLabel: 'hub2' }],
      [header, fingerprint, { ...pair, footageRecipients: [] }],
      [header, fingerprint, { ...pair, nonce: randomBytes(16) }],
      // Length prefixes: moving a byte between two adjacent fields is a different transcript.
      [
        header,
        fingerprint,
        {
          ...pair,
          ownerLabel: 'alic',
          hubPublicKey: Buffer.concat([Buffer.from('e'), pair.hubPublicKey as Uint8Array]),
        },
      ],
    ];
    for (const [h, f, p] of variants) assert.notDeepEqual(pairingTranscript(h, f, p), base);
  });
});

describe('openPairCommand', () => {
  const owner = generateSigningKey();
  const ctx = { deviceId: 'front-door', topic: header.topic, nowMs: NOW + 1 };
  const sealed = (body: doorbell.v1.ICommand, key = owner) => sealCommand({ header, ...body }, key);

  test('accepts a Pair signed by the key it carries', () => {
    const { command, key } = openPairCommand(sealed({ pair: { ownerPublicKey: owner.publicRaw } }), ctx);
    assert.equal(command.kind, 'pair');
    assert.equal(key.keyId, owner.keyId);
  });

  test('records nothing in the replay guard until record() is called (after the proof verified)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pair-open-'));
    try {
      const path = join(dir, 'replay.json');
      const replay = await ReplayGuard.open(path);
      const opened = openPairCommand(sealed({ pair: { ownerPublicKey: owner.publicRaw } }), {
        ...ctx,
        replay,
      });
      await assert.rejects(readFile(path), { code: 'ENOENT' }, 'nothing was written');
      assert.equal(replay.check(owner.keyId, header.counter ?? 0, NOW), 'ok');
      opened.record();
      assert.equal(replay.check(owner.keyId, header.counter ?? 0, NOW), 'replay');
      assert.ok(JSON.parse(await readFile(path, 'utf8')).marks[owner.keyId]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('refuses a Pair signed by another key, and anything that is not a Pair', () => {
    const other = generateSigningKey();
    assert.throws(
      () => openPairCommand(sealed({ pair: { ownerPublicKey: owner.publicRaw } }, other), ctx),
      (e) => e instanceof VerifyError && e.kind === 'unknown-key',
    );
    assert.throws(
      () => openPairCommand(sealed({ ringChimeTest: {} }), ctx),
      (e) => e instanceof VerifyError && e.kind === 'unknown-key',
    );
    assert.throws(
      () => openPairCommand(sealed({ pair: { ownerPublicKey: new Uint8Array(31) } }), ctx),
      (e) => e instanceof VerifyError && e.kind === 'undecodable',
    );
  });

  test('random and mutated bytes never open and never throw anything but a VerifyError', () => {
    const good = sealed({ pair: { ownerPublicKey: owner.publicRaw } });
    const mutated = fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
      const copy = Uint8Array.from(good);
      copy[at] = (copy[at] ?? 0) ^ x;
      return copy;
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), mutated), (bytes) => {
        try {
          openPairCommand(bytes, ctx);
          // A flip in a byte the signature does not cover (the envelope's key_id
          // framing cannot be one: key_id must name the carried key) would be a bug.
          assert.fail('a mutated or random envelope opened');
        } catch (err) {
          assert.ok(err instanceof VerifyError, String(err));
        }
      }),
      { numRuns: 1500 },
    );
  });
});
