import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCa, issueLeaf, type KeyAndCert } from '../broker/certs.js';
import { certificateCommonName, hubClientId } from './client-id.js';

describe('hubClientId', () => {
  let dir: string;
  let ca: KeyAndCert;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-client-id-'));
    ca = await createCa(dir, 'test CA', 1);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('without a certificate: the ids of a plain broker, doorbell-hub-<name>', () => {
    for (const tls of [undefined, {}, { ca: '/nonexistent/ca.crt' }]) {
      assert.equal(
        hubClientId(tls, 'watch-0123456789abcdef', 'stable'),
        'doorbell-hub-watch-0123456789abcdef',
      );
      assert.match(hubClientId(tls, '', 'unique'), new RegExp(`^doorbell-hub-${process.pid}-[0-9a-f]{6}$`));
      assert.match(
        hubClientId(tls, 'pair', 'unique'),
        new RegExp(`^doorbell-hub-pair-${process.pid}-[0-9a-f]{6}$`),
      );
    }
  });

  test("with a certificate: <CN>:<name>, the CN read from the certificate's subject (openssl-issued)", async () => {
    const leaf = await issueLeaf(ca, dir, { stem: 'home-hub', commonName: 'home-hub', usage: 'client' }, 1);
    const tls = { ca: ca.cert, ...leaf };
    assert.equal(certificateCommonName(leaf.cert), 'home-hub');
    assert.equal(hubClientId(tls, 'watch-0123456789abcdef', 'stable'), 'home-hub:watch-0123456789abcdef');
    const a = hubClientId(tls, 'ota', 'unique');
    const b = hubClientId(tls, 'ota', 'unique');
    assert.match(a, new RegExp(`^home-hub:ota-${process.pid}-[0-9a-f]{6}$`));
    assert.notEqual(a, b, 'two connections of one purpose get different ids');
  });

  test('a certificate whose CN is not a valid hub name, or an unreadable one, is a clear error', async () => {
    const bad = await issueLeaf(ca, dir, { stem: 'bad', commonName: 'Home_Hub', usage: 'client' }, 1);
    assert.throws(
      () => hubClientId({ cert: bad.cert }, 'pair', 'unique'),
      /CN "Home_Hub" .* not a valid hub name/,
    );
    assert.throws(
      () => hubClientId({ cert: join(dir, 'missing.crt') }, 'pair', 'unique'),
      /cannot read the TLS client certificate/,
    );
  });

  test('a purpose outside [A-Za-z0-9_-] is refused', () => {
    for (const purpose of ['a:b', 'a/b', 'a#', 'x'.repeat(65)]) {
      assert.throws(() => hubClientId(undefined, purpose, 'stable'), /invalid client id purpose/);
    }
  });
});
