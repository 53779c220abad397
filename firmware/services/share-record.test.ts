import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { COMMAND_BODIES } from '../../proto/test-fixtures.js';
import { shareRecord } from './share-record.js';

const valid = COMMAND_BODIES.recordShare.recordShare ?? {};

test('a RecordShare becomes one share.* audit entry that names the requester by recipient fingerprint only', () => {
  const r = shareRecord(valid);
  assert.ok(typeof r !== 'string', String(r));
  assert.equal(r.event, 'share.requested');
  assert.match(String(r.data.recipient), /^[0-9a-f]{16}$/);
  const approved = shareRecord({
    ...valid,
    event: 'approved',
    itemIds: ['1750000000000-0123456789ab'],
    approvalSha256: Buffer.alloc(32, 1),
  });
  assert.ok(typeof approved !== 'string' && approved.data.items === '1750000000000-0123456789ab');
});

test('every malformed RecordShare is refused with a reason, whatever its fields', () => {
  for (const bad of [
    { event: 'granted' },
    { requestId: 'ABC' },
    { requester: '' },
    { requester: 'x'.repeat(65) },
    { requester: 'line\nbreak' },
    { reason: 'x'.repeat(201) },
    { fromMs: 10, untilMs: 5 },
    { recipient: 'AGE-SECRET-KEY-1XYZ' },
    { event: 'approved' },
    { event: 'approved', itemIds: ['1750000000000-0123456789ab'] },
    { event: 'approved', itemIds: ['x'], approvalSha256: Buffer.alloc(32) },
    { event: 'denied', itemIds: ['1750000000000-0123456789ab'] },
  ]) {
    assert.equal(typeof shareRecord({ ...valid, ...bad }), 'string', JSON.stringify(bad));
  }
  fc.assert(
    fc.property(
      fc.record({
        event: fc.string(),
        requestId: fc.string(),
        requester: fc.string(),
        recipient: fc.string(),
      }),
      (f) => {
        const r = shareRecord({ ...valid, ...f });
        assert.ok(typeof r === 'string' || r.event.startsWith('share.'));
      },
    ),
  );
});
