import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { generateSigningKey, publicKeyToPem } from '../proto/keys.js';
import {
  BUNDLE_ERROR_KINDS,
  BundleError,
  type BundleMeta,
  bufferSource,
  buildBundle,
  HEADER_BYTES,
  headerExtent,
  keyMap,
  MAX_BUNDLE_BYTES,
  MAX_MANIFEST_BYTES,
  SIGNING_CONTEXT,
  signManifestAndPack,
  type TrustPolicy,
  verifyBundle,
} from './manifest.js';

const key = generateSigningKey();
const otherKey = generateSigningKey();
const NOW = 1_800_000_000_000;
const meta: BundleMeta = {
  hardware: 'open-doorbell/sim-x64',
  version: '1.2.3',
  securityCounter: 5,
  createdAtMs: NOW - 1000,
  expiresAtMs: NOW + 86_400_000,
  development: false,
  entry: 'doorbell.js',
};
const files = [
  { path: 'doorbell.js', data: Buffer.from('console.log("hi")\n'), executable: true },
  { path: 'node_modules/epoll/build/Release/epoll.node', data: Buffer.alloc(300, 7) },
  { path: 'empty', data: Buffer.alloc(0) },
];
const policy: TrustPolicy = {
  keys: keyMap([key]),
  hardware: 'open-doorbell/sim-x64',
  nowMs: NOW,
  minSecurityCounter: 5,
  allowDevelopment: false,
};
const good = buildBundle(files, meta, key);

async function refusal(bundle: Buffer, p: TrustPolicy = policy): Promise<string> {
  try {
    await verifyBundle(bufferSource(bundle), p);
  } catch (err) {
    if (err instanceof BundleError) return err.kind;
    throw err;
  }
  return 'accepted';
}

describe('bundle manifest', () => {
  it("headerExtent: a bundle's first bytes give where its signed manifest ends; anything else gives undefined", async () => {
    const signed = await verifyBundle(bufferSource(good), policy);
    assert.equal(headerExtent(good.subarray(0, HEADER_BYTES)), signed.payloadOffset);
    assert.equal(headerExtent(good.subarray(0, HEADER_BYTES - 1)), undefined, 'too short');
    const edit = (at: number, bytes: number[]): Buffer => {
      const b = Buffer.from(good.subarray(0, HEADER_BYTES));
      b.set(bytes, at);
      return b;
    };
    assert.equal(headerExtent(edit(0, [0x58])), undefined, 'bad magic');
    assert.equal(headerExtent(edit(12, [0, 0, 0, 0])), undefined, 'empty manifest');
    const over = MAX_MANIFEST_BYTES + 1;
    assert.equal(
      headerExtent(edit(12, [over >>> 24, (over >>> 16) & 255, (over >>> 8) & 255, over & 255])),
      undefined,
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 2 * HEADER_BYTES }),
        fc.nat(MAX_MANIFEST_BYTES + 10),
        (bytes, m) => {
          const b = Buffer.concat([good.subarray(0, 8), Buffer.alloc(8), Buffer.from(bytes)]);
          if (b.length >= 16) b.writeUInt32BE(m, 12);
          const extent = headerExtent(b);
          if (b.length < HEADER_BYTES || m === 0 || m > MAX_MANIFEST_BYTES) return extent === undefined;
          return extent === HEADER_BYTES + m;
        },
      ),
    );
  });

  it('accepts a well-formed bundle and reports every file', async () => {
    const signed = await verifyBundle(bufferSource(good), policy);
    assert.equal(signed.manifest.files.length, 3);
    assert.equal(signed.keyId, key.keyId);
    assert.equal(signed.offsets[0], signed.payloadOffset);
  });

  it('refuses each policy violation with its kind', async () => {
    assert.equal(await refusal(good, { ...policy, keys: keyMap([otherKey]) }), 'unknown-key');
    assert.equal(await refusal(good, { ...policy, hardware: 'open-doorbell/rpi-arm64' }), 'wrong-hardware');
    assert.equal(await refusal(good, { ...policy, nowMs: meta.expiresAtMs }), 'expired');
    assert.equal(await refusal(good, { ...policy, minSecurityCounter: 6 }), 'downgrade');
    const dev = buildBundle(files, { ...meta, development: true }, key);
    assert.equal(await refusal(dev), 'development-build');
    assert.equal(await refusal(dev, { ...policy, allowDevelopment: true }), 'accepted');
  });

  it('refuses tampering with the signature, the manifest, a file or the length', async () => {
    const sig = Buffer.from(good);
    sig[30] = (sig[30] ?? 0) ^ 1;
    assert.equal(await refusal(sig), 'bad-signature');
    const man = Buffer.from(good);
    man[HEADER_BYTES + 5] = (man[HEADER_BYTES + 5] ?? 0) ^ 1;
    assert.equal(await refusal(man), 'bad-signature');
    const payload = Buffer.from(good);
    payload[payload.length - 1] = (payload[payload.length - 1] ?? 0) ^ 1;
    assert.equal(await refusal(payload), 'hash-mismatch');
    assert.equal(await refusal(Buffer.concat([good, Buffer.from('x')])), 'corrupt');
    assert.equal(await refusal(good.subarray(0, good.length - 1)), 'corrupt');
    const unsigned = Buffer.from(good);
    unsigned.fill(0, 24, 88);
    assert.equal(await refusal(unsigned), 'bad-signature');
  });

  it('checks size caps before reading', async () => {
    const huge = { size: MAX_BUNDLE_BYTES + 1, read: () => Promise.reject(new Error('must not read')) };
    await assert.rejects(verifyBundle(huge, policy), (e: BundleError) => e.kind === 'oversized');
    const bigManifest = Buffer.from(good);
    bigManifest.writeUInt32BE(2 * 1024 * 1024, 12);
    assert.equal(await refusal(bigManifest), 'oversized');
  });

  it('refuses signed but invalid manifests (paths escaping the slot, duplicates)', async () => {
    for (const path of ['../etc/passwd', '/abs', 'a/../b', '.hidden', 'a//b', 'a\\b']) {
      const m = Buffer.from(
        JSON.stringify({
          format: 1,
          ...meta,
          entry: path,
          files: [{ path, size: 0, sha256: '0'.repeat(64), executable: false }],
        }),
      );
      assert.equal(await refusal(signManifestAndPack(m, [], key)), 'corrupt', path);
    }
    const dup = Buffer.from(
      JSON.stringify({
        format: 1,
        ...meta,
        files: [
          {
            path: 'doorbell.js',
            size: 0,
            sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
            executable: false,
          },
          {
            path: 'doorbell.js',
            size: 0,
            sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
            executable: false,
          },
        ],
      }),
    );
    assert.equal(await refusal(signManifestAndPack(dup, [], key)), 'corrupt');
    const v2 = Buffer.from(JSON.stringify({ format: 2 }));
    assert.equal(await refusal(signManifestAndPack(v2, [], key)), 'unsupported-format');
  });

  it('openssl verifies the manifest signature (independent oracle)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flash-oracle-'));
    try {
      const len = good.readUInt32BE(12);
      writeFileSync(
        join(dir, 'msg'),
        Buffer.concat([SIGNING_CONTEXT, good.subarray(HEADER_BYTES, HEADER_BYTES + len)]),
      );
      writeFileSync(join(dir, 'sig'), good.subarray(24, 88));
      writeFileSync(join(dir, 'pub.pem'), publicKeyToPem(key));
      const out = execFileSync('openssl', [
        'pkeyutl',
        '-verify',
        '-pubin',
        '-inkey',
        join(dir, 'pub.pem'),
        '-rawin',
        '-in',
        join(dir, 'msg'),
        '-sigfile',
        join(dir, 'sig'),
      ]).toString();
      assert.match(out, /Signature Verified Successfully/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('property: random bytes never crash the verifier and never verify', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), async (bytes, withMagic) => {
        const b = Buffer.from(bytes);
        if (withMagic && b.length >= 16) {
          good.copy(b, 0, 0, 16);
        }
        const kind = await refusal(b);
        assert.ok(BUNDLE_ERROR_KINDS.includes(kind as never), kind);
      }),
      { numRuns: 500 },
    );
  });

  it('property: any mutation of a valid bundle is refused with a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.option(fc.integer({ min: -40, max: 40 })),
        async (flips, resize) => {
          let b = Buffer.from(good);
          for (const [at, x] of flips) b[at] = (b[at] ?? 0) ^ x;
          if (resize !== null && resize !== 0) {
            b = resize > 0 ? Buffer.concat([b, Buffer.alloc(resize)]) : b.subarray(0, b.length + resize);
          }
          const kind = await refusal(b);
          assert.ok(BUNDLE_ERROR_KINDS.includes(kind as never), kind);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: signed manifests of arbitrary JSON never crash and only verify when valid', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), async (json) => {
        const kind = await refusal(signManifestAndPack(Buffer.from(JSON.stringify(json) ?? 'null'), [], key));
        assert.ok(BUNDLE_ERROR_KINDS.includes(kind as never), kind);
      }),
      { numRuns: 300 },
    );
  });
});
