import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ed25519Speed } from './openssl-speed.js';

test('openssl speed figures for Ed25519 are read from the real tool', async () => {
  const { sign_us, verify_us } = await ed25519Speed();
  assert.ok(sign_us > 0 && Number.isFinite(sign_us), `sign ${sign_us}`);
  assert.ok(verify_us > 0 && Number.isFinite(verify_us), `verify ${verify_us}`);
});
