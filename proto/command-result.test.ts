import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failure, MAX_ERROR_MESSAGE_CHARS } from './command-result.js';
import { doorbell } from './gen/doorbell.js';

test('a failure carries its kind and a message cut to MAX_ERROR_MESSAGE_CHARS, and encodes', () => {
  const long = 'x'.repeat(5000);
  const r = failure(doorbell.v1.ErrorKind.UNKNOWN_KEY, long);
  assert.equal(r.ok, false);
  assert.equal(r.errorKind, doorbell.v1.ErrorKind.UNKNOWN_KEY);
  assert.equal(r.errorMessage?.length, MAX_ERROR_MESSAGE_CHARS);
  const bytes = doorbell.v1.CommandResult.encode(r).finish();
  assert.equal(doorbell.v1.CommandResult.decode(bytes).errorMessage, long.slice(0, MAX_ERROR_MESSAGE_CHARS));
  assert.equal(failure(doorbell.v1.ErrorKind.UNKNOWN_KEY, 'short').errorMessage, 'short');
});
