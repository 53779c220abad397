import assert from 'node:assert/strict';
import { test } from 'node:test';
import { doorbell, generateSigningKey, publicKeyToText } from '../proto/index.js';
import { devicesTable, formatTable, keysTable, keyText, resultToJson, statusLines } from './tables.js';

test('a table pads every column but the last to its widest cell, two spaces apart, no trailing blanks', () => {
  assert.equal(
    formatTable(
      ['A', 'LONGER', 'LAST'],
      [
        ['wide cell', 'x', 'end'],
        ['y', '', ''],
      ],
    ),
    'A          LONGER  LAST\nwide cell  x       end\ny\n',
  );
});

test('keys are shown as ed25519: text; a key off the wire that is not one says so instead of throwing', () => {
  const key = generateSigningKey();
  assert.equal(keyText(key.publicRaw), publicKeyToText(key));
  assert.equal(keyText(undefined), '-');
  assert.equal(keyText(new Uint8Array(5)), '(not an Ed25519 key: 5 bytes)');
});

test('the keys table names roles, marks missing labels and an unknown role, and lists recipients and the epoch', () => {
  const key = generateSigningKey();
  const text = keysTable({
    keys: [
      {
        keyId: key.keyId,
        role: doorbell.v1.Role.ADMINISTER,
        label: 'alice',
        source: 'paired',
        publicKey: key.publicRaw,
      },
      {
        keyId: 'ffffffffffffffff',
        role: 99 as doorbell.v1.Role,
        label: '',
        source: '',
        publicKey: new Uint8Array(3),
      },
    ],
    footageRecipients: ['age1example'],
    keyEpoch: 4,
  });
  const [header, owner, odd] = text.split('\n');
  assert.match(header ?? '', /^KEY ID +ROLE +LABEL +SOURCE +PUBLIC KEY$/);
  assert.match(owner ?? '', new RegExp(`^${key.keyId} +administer +alice +paired +ed25519:`));
  assert.match(odd ?? '', /^f{16} +no role +- +- +\(not an Ed25519 key: 3 bytes\)$/);
  assert.match(text, /footage recipients \(1\):\n {2}age1example\n/);
  assert.match(text, /key epoch: 4\n$/);
});

test('status lines are one field a line, names spelt out in words; devices say when there are none', () => {
  const lines = statusLines({ firmwareVersion: '1.2.3', halBackend: 'sim', paired: true });
  assert.match(lines, /^FIELD +VALUE\n/);
  assert.match(lines, /^firmware version +1\.2\.3$/m);
  assert.match(lines, /^paired +true$/m);
  assert.equal(devicesTable(new Map()), 'no doorbell is paired or pinned yet (see pair)\n');
  assert.match(devicesTable(new Map([['porch', { publicKey: 'ed25519:x' }]])), /^porch +ed25519:x +- +-$/m);
});

test("a result's JSON carries its device, enum names and keys as ed25519: text", () => {
  const key = generateSigningKey();
  const json = resultToJson('porch', {
    ok: false,
    errorKind: doorbell.v1.ErrorKind.REPLAY,
    keys: { keys: [{ keyId: key.keyId, publicKey: key.publicRaw, role: doorbell.v1.Role.VIEW }] },
  });
  assert.equal(json.device, 'porch');
  assert.equal(json.errorKind, 'REPLAY');
  const keys = (json.keys as { keys: Array<{ publicKey: string; role: string }> }).keys;
  assert.equal(keys[0]?.publicKey, publicKeyToText(key));
  assert.equal(keys[0]?.role, 'VIEW');
});
