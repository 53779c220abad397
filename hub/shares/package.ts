import { createHash, sign, verify } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { publicKeyFromText, recipientFingerprint, type SigningKey } from '../../proto/index.js';
import { auditOrigin, auditVerifier, verifyAuditProof } from '../../proto/tlog/audit.js';
import { ProofError } from '../../proto/tlog/proof.js';

/**
 * A share package, what a requester receives for an approved footage request:
 *
 *   approval.json        what the owner approved (request, requester, recipient, items with
 *                        the SHA-256 the doorbell signed, expiry, the owner's public key)
 *   approval.sig         the owner key's Ed25519 signature over approval.json, base64
 *   approval.tlog-proof  a C2SP tlog-proof that the doorbell logged the approval
 *                        (entry `share.approved` naming approval.json's SHA-256)
 *   device.txt           the doorbell's id and public key (the proof's trust anchor)
 *   clips/<id>.age       each approved item, re-addressed to the requester only
 *
 * `verifyPackage` checks all of it offline; nothing in it decrypts without
 * the requester's identity.
 */

export interface Approval {
  version: 1;
  requestId: string;
  deviceId: string;
  requester: string;
  reason: string;
  /** The requester's age recipient: the only one the clips are addressed to. */
  recipient: string;
  items: { id: string; kind: string; sha256: string }[];
  approvedAtMs: number;
  expiresAtMs: number;
  /** The owner's key that signed approval.json (ed25519:...). */
  approvedBy: string;
}

export function signApproval(
  approval: Approval,
  owner: SigningKey,
): { json: string; sig: string; sha256: Buffer } {
  const json = `${JSON.stringify(approval, null, 2)}\n`;
  const sig = sign(null, Buffer.from(json, 'utf8'), owner.privateKey).toString('base64');
  return { json, sig, sha256: createHash('sha256').update(json, 'utf8').digest() };
}

export class PackageError extends Error {
  override readonly name = 'PackageError';
}

export interface VerifiedPackage {
  approval: Approval;
  deviceId: string;
  deviceKey: string;
  /** The audit entry's seq and the size of the signed log that holds it. */
  entrySeq: number;
  logSize: number;
}

/**
 * Checks a share package offline: the doorbell's proof that it logged this
 * very approval (its signed checkpoint, the inclusion proof, the entry naming
 * approval.json's SHA-256, its request, items and recipient), the owner's
 * signature over approval.json, and that the package holds exactly the
 * approved items. Throws PackageError saying what does not hold.
 */
export async function verifyPackage(dir: string): Promise<VerifiedPackage> {
  const read = (name: string) =>
    readFile(join(dir, name), 'utf8').catch(() => {
      throw new PackageError(`the package has no ${name}`);
    });
  const [json, sig, proof, device] = await Promise.all([
    read('approval.json'),
    read('approval.sig'),
    read('approval.tlog-proof'),
    read('device.txt'),
  ]);
  const [deviceId = '', deviceKeyText = ''] = device.trim().split(/\s+/);
  let approval: Approval;
  try {
    approval = JSON.parse(json) as Approval;
  } catch {
    throw new PackageError('approval.json is not JSON');
  }
  const owner = publicKeyFromText(approval.approvedBy);
  if (!verify(null, Buffer.from(json, 'utf8'), owner.publicKey, Buffer.from(sig.trim(), 'base64'))) {
    throw new PackageError("approval.sig is not the owner's signature over approval.json");
  }
  const deviceKey = publicKeyFromText(deviceKeyText);
  if (approval.deviceId !== deviceId) throw new PackageError('the approval names another doorbell');
  let entry: Awaited<ReturnType<typeof verifyAuditProof>>;
  try {
    entry = verifyAuditProof(
      proof,
      auditVerifier(deviceId, deviceKey),
      auditOrigin(deviceId, deviceKey.keyId),
    );
  } catch (err) {
    if (err instanceof ProofError) throw new PackageError(`the proof does not verify: ${err.message}`);
    throw err;
  }
  const d = entry.entry.data;
  const sha = createHash('sha256').update(json, 'utf8').digest('hex');
  if (entry.entry.event !== 'share.approved' || d.approval !== sha || d.request !== approval.requestId) {
    throw new PackageError('the logged entry is not the approval of this request with this approval.json');
  }
  if (d.items !== approval.items.map((i) => i.id).join(' '))
    throw new PackageError('the logged items differ');
  if (d.recipient !== recipientFingerprint(approval.recipient))
    throw new PackageError('the logged recipient is not the one in approval.json');
  const files = (await readdir(join(dir, 'clips')).catch(() => [] as string[])).sort();
  const expected = approval.items.map((i) => `${i.id}.age`).sort();
  if (JSON.stringify(files) !== JSON.stringify(expected)) {
    throw new PackageError(
      `the package holds ${files.join(', ') || 'nothing'}, the approval names ${expected.join(', ')}`,
    );
  }
  return { approval, deviceId, deviceKey: deviceKeyText, entrySeq: entry.entry.seq, logSize: entry.size };
}
