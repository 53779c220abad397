import type { EventBody } from './event-signer.js';

export interface AuditRecord {
  event: string;
  data: Record<string, string | number | boolean | undefined>;
}

/**
 * The audit log entry a signed event stands for, if any: key, role and
 * recipient changes, pairing included. Items stored and evicted are written
 * by the media bridge, footage reads by the footage service, update steps by
 * the update agent. Cheap and synchronous: it sees every event, presses
 * included, and answers those at once.
 */
export function auditRecordOf(body: EventBody): AuditRecord | undefined {
  if (!body.keysChanged) return undefined;
  const k = body.keysChanged;
  return {
    event: `keys.${k.change || 'changed'}`,
    data: { keyId: k.keyId ?? '', by: k.byKeyId ?? '', keyEpoch: Number(k.keyEpoch ?? 0), role: k.role ?? 0 },
  };
}
