import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asHalError, HalError, isHalError } from './errors.js';

test('HalError carries name, kind, device, cause, and a message naming the device', () => {
  const cause = new Error('EIO');
  const err = new HalError('io', 'chime', 'write failed', { cause });
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'HalError');
  assert.equal(err.kind, 'io');
  assert.equal(err.device, 'chime');
  assert.equal(err.cause, cause);
  assert.equal(err.message, 'chime: write failed');
  assert.ok(isHalError(err));
  assert.ok(isHalError(err, 'io'));
  assert.ok(!isHalError(err, 'busy'));
  assert.ok(!isHalError(cause));
});

test('asHalError passes HalErrors through and wraps anything else', () => {
  const original = new HalError('closed', 'led', 'line is closed');
  assert.equal(asHalError(original, 'io', 'x', 'y'), original);
  const wrapped = asHalError('a string', 'io', 'button', 'reading');
  assert.equal(wrapped.kind, 'io');
  assert.equal(wrapped.message, 'button: reading failed: a string');
  assert.equal(wrapped.cause, 'a string');
});
