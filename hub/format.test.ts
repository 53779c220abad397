import assert from 'node:assert/strict';
import { test } from 'node:test';
import { doorbell } from '../proto/index.js';
import type { VerifiedEvent } from './event-watcher.js';
import { describeEvent } from './format.js';

function verified(event: doorbell.v1.IEvent): VerifiedEvent {
  return {
    deviceId: 'front-door',
    topic: 'doorbell/v1/front-door/evt',
    channel: 'evt',
    event: doorbell.v1.Event.create(event),
    counter: 9,
    correlationId: '0123456789abcdef',
    issuedAtMs: 1_750_000_000_000,
    receivedAtMs: 1_750_000_000_000,
    receivedAtNs: 0n,
    retained: false,
    payloadBytes: 100,
  };
}

test('a key enrolled by pairing is shown to the owner with the role it got', () => {
  const line = describeEvent(
    verified({
      keysChanged: {
        change: 'paired',
        keyId: '0123456789abcdef',
        byKeyId: 'fedcba9876543210',
        keyEpoch: 1,
        role: doorbell.v1.Role.ADMINISTER,
      },
    }),
  );
  assert.match(line, /keys changed: paired key 0123456789abcdef as administer by fedcba9876543210/);
});

test('a change without a role (recipients) names none', () => {
  const line = describeEvent(
    verified({ keysChanged: { change: 'recipients-set', byKeyId: 'fedcba9876543210' } }),
  );
  assert.match(line, /keys changed: recipients-set by fedcba9876543210/);
  assert.doesNotMatch(line, / as /);
});

test('watch shows when an event was issued; one that waited in a queue also says when it arrived', () => {
  const live = describeEvent({ ...verified({ pairingRequested: {} }), receivedAtMs: 1_750_000_000_150 });
  assert.match(live, /^15:06:40\.000 front-door pairing requested/);
  const queued = describeEvent({
    ...verified({ pairingRequested: {} }),
    receivedAtMs: 1_750_000_000_000 + 45 * 60_000,
  });
  assert.match(
    queued,
    /^15:06:40\.000 \[queued: arrived 15:51:40\.000, 45 min later\] front-door pairing requested/,
  );
  const yesterday = describeEvent({
    ...verified({ pairingRequested: {} }),
    receivedAtMs: 1_750_000_000_000 + 20 * 3_600_000,
  });
  assert.match(yesterday, /^2025-06-15 15:06:40\.000 \[queued: arrived 11:06:40\.000, 20\.0 h later\]/);
});
