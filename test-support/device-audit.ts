import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VerifyKey } from '../proto/index.js';
import { type AuditCheck, auditOrigin, auditVerifier, checkAuditLog } from '../proto/tlog/audit.js';

export interface DeviceAudit extends AuditCheck {
  lines: string[];
  /** The device's latest signed checkpoint (`<stateDir>/audit/checkpoint`), if written. */
  checkpoint: string | undefined;
}

/** Reads a device's audit log from its state directory and checks it against its own latest checkpoint. */
export async function readDeviceAudit(
  stateDir: string,
  deviceId: string,
  key: VerifyKey,
): Promise<DeviceAudit> {
  const text = await readFile(join(stateDir, 'audit', 'log.jsonl'), 'utf8').catch(() => '');
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  const checkpoint = await readFile(join(stateDir, 'audit', 'checkpoint'), 'utf8').catch(() => undefined);
  const check = checkAuditLog(
    lines,
    checkpoint === undefined ? [] : [{ note: checkpoint, seenAtMs: Date.now() }],
    auditVerifier(deviceId, key),
    auditOrigin(deviceId, key.keyId),
  );
  return { ...check, lines, checkpoint };
}
