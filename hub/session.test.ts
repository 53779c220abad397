import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMINISTER_MAX_LIFETIME_MS, COMMAND_ROLES, Role } from '../proto/roles.js';
import { COMMAND_BODIES } from '../proto/test-fixtures.js';
import { lifetimeMs } from './session.js';

test('a command that needs Administer lives at most the Administer maximum whichever key signs it; the owner key signs every command so', () => {
  for (const [kind, body] of Object.entries(COMMAND_BODIES)) {
    const needs = COMMAND_ROLES[kind as keyof typeof COMMAND_ROLES];
    assert.equal(lifetimeMs(body, true), ADMINISTER_MAX_LIFETIME_MS, `${kind} by the owner`);
    assert.equal(
      lifetimeMs(body, false),
      needs === Role.ADMINISTER ? ADMINISTER_MAX_LIFETIME_MS : undefined,
      `${kind} by the hub key`,
    );
  }
});
