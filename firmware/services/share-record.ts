import { ID_PATTERN } from '../../media/store/index-file.js';
import { ageRecipientProblem, type doorbell, recipientFingerprint } from '../../proto/index.js';
import type { AuditRecord } from './audit-entries.js';

const EVENTS = new Set(['requested', 'approved', 'denied', 'expired']);
const REQUEST_ID = /^[0-9a-f]{16}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * The audit entry a RecordShare stands for, or what is wrong with it. Every
 * field is checked: the entry is evidence a requester may later show.
 */
export function shareRecord(c: doorbell.v1.IRecordShare | null | undefined): AuditRecord | string {
  const event = c?.event ?? '';
  if (!EVENTS.has(event)) return 'event is one of requested, approved, denied, expired';
  const requestId = c?.requestId ?? '';
  if (!REQUEST_ID.test(requestId)) return 'request_id is 16 lowercase hex digits';
  const requester = c?.requester ?? '';
  if (requester.length < 1 || requester.length > 64 || CONTROL.test(requester))
    return 'requester is 1 to 64 printable characters';
  const reason = c?.reason ?? '';
  if (reason.length > 200 || CONTROL.test(reason)) return 'reason is at most 200 printable characters';
  const fromMs = Number(c?.fromMs ?? 0);
  const untilMs = Number(c?.untilMs ?? 0);
  if (untilMs < fromMs) return 'until_ms is before from_ms';
  const recipient = c?.recipient ?? '';
  const problem = ageRecipientProblem(recipient);
  if (problem !== undefined) return `recipient: ${problem}`;
  const items = c?.itemIds ?? [];
  const approval = c?.approvalSha256 ?? new Uint8Array();
  if (event === 'approved') {
    if (items.length < 1 || items.length > 100) return 'an approval names 1 to 100 items';
    if (items.some((id) => !ID_PATTERN.test(id))) return 'item_ids must be item ids';
    if (approval.length !== 32) return 'an approval carries the SHA-256 of the signed approval';
  } else if (items.length > 0 || approval.length > 0) {
    return 'only an approval names items';
  }
  return {
    event: `share.${event}`,
    data: {
      request: requestId,
      requester,
      reason,
      fromMs,
      untilMs,
      recipient: recipientFingerprint(recipient),
      expiresAtMs: Number(c?.expiresAtMs ?? 0),
      ...(event === 'approved'
        ? { items: items.join(' '), approval: Buffer.from(approval).toString('hex') }
        : {}),
    },
  };
}
