import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { generateSigningKey, verifyKeyOf } from '../keys.js';
import { inclusionProof, leafHash, rootOf } from './merkle.js';
import { formatCheckpoint, keyHash, signNote } from './note.js';
import { formatProof, ProofError, parseProof, verifyProof } from './proof.js';

const key = generateSigningKey();
const NAME = 'example.org/log';
const verifier = { name: NAME, hash: keyHash(NAME, key.publicRaw), key: verifyKeyOf(key) };

function logOf(n: number) {
  const entries = Array.from({ length: n }, (_, i) => Buffer.from(`entry ${i}`));
  const leaves = entries.map((e) => leafHash(e));
  const checkpoint = signNote(formatCheckpoint({ origin: NAME, size: n, root: rootOf(leaves) }), NAME, key);
  return { entries, leaves, checkpoint };
}

describe('C2SP tlog-proof', () => {
  test('the worked example of the spec parses: extra, index, five hashes, the checkpoint verbatim', () => {
    const hashes = Array.from({ length: 5 }, () => randomBytes(32));
    const text = `c2sp.org/tlog-proof@v1\nextra ${Buffer.from('hi').toString('base64')}\nindex 73894\n${hashes.map((h) => h.toString('base64')).join('\n')}\n\nexample.com/fancylog\n109482\n${randomBytes(32).toString('base64')}\n\n— example.com/fancylog AAAA\n`;
    const p = parseProof(text);
    assert.equal(p.index, 73894);
    assert.deepEqual(p.hashes, hashes);
    assert.equal(p.extra?.toString(), 'hi');
    assert.ok(p.checkpoint.startsWith('example.com/fancylog\n109482\n'));
    assert.equal(formatProof(p), text, 'formatting gives the same text back');
  });

  test('for any log and any entry, the proof verifies; any other entry, index or hash does not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.nat(), (n, pick, flip) => {
        const { entries, leaves, checkpoint } = logOf(n);
        const i = pick % n;
        const text = formatProof({ index: i, hashes: inclusionProof(leaves, i), checkpoint });
        assert.equal(verifyProof(text, leafHash(entries[i] as Buffer), verifier, NAME), n);
        assert.throws(() => verifyProof(text, leafHash(Buffer.from('forged')), verifier, NAME), ProofError);
        assert.throws(
          () => verifyProof(text, leafHash(entries[i] as Buffer), verifier, 'other.org/log'),
          ProofError,
        );
        if (n > 1) {
          const other = formatProof({ index: (i + 1) % n, hashes: inclusionProof(leaves, i), checkpoint });
          assert.throws(() => verifyProof(other, leafHash(entries[i] as Buffer), verifier, NAME), ProofError);
          const hashes = inclusionProof(leaves, i);
          const h = hashes[flip % hashes.length] as Buffer;
          h[flip % 32] = (h[flip % 32] ?? 0) ^ 1;
          const bent = formatProof({ index: i, hashes, checkpoint });
          assert.throws(() => verifyProof(bent, leafHash(entries[i] as Buffer), verifier, NAME), ProofError);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('the parser never throws anything but ProofError on arbitrary text, and a checkpoint by another key is refused', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc.string({ maxLength: 200 }).map((s) => `c2sp.org/tlog-proof@v1\n${s}`),
          fc.string({ maxLength: 200 }).map((s) => `c2sp.org/tlog-proof@v1\nindex 3\n${s}\n\n${s}`),
        ),
        (text) => {
          try {
            parseProof(text);
          } catch (err) {
            assert.ok(err instanceof ProofError, String(err));
          }
        },
      ),
      { numRuns: 1000 },
    );
    const { entries, leaves } = logOf(3);
    const forged = signNote(
      formatCheckpoint({ origin: NAME, size: 3, root: rootOf(leaves) }),
      NAME,
      generateSigningKey(),
    );
    const text = formatProof({ index: 0, hashes: inclusionProof(leaves, 0), checkpoint: forged });
    assert.throws(() => verifyProof(text, leafHash(entries[0] as Buffer), verifier, NAME), /does not verify/);
  });
});
