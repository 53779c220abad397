import type { VerifyKey } from '../keys.js';
import { EMPTY_ROOT, leafHash, MerkleProofError, rootOf, verifyConsistency } from './merkle.js';
import { keyHash, NoteError, type NoteVerifier, openNote, parseCheckpoint } from './note.js';
import { ProofError, parseProof, verifyProof } from './proof.js';

/**
 * The device's audit log as a transparency log: each entry is one line of
 * JSON, a leaf of an RFC 6962 Merkle tree (the leaf is the line's UTF-8
 * bytes); the device signs C2SP tlog-checkpoints of it with its identity key
 * as C2SP signed-notes. This module is the format both sides share: the
 * device writes it (firmware/audit-log.ts), a hub checks it
 * (`doorbell-hub audit`), and so can any standard verifier.
 */

export const MAX_AUDIT_LINE_BYTES = 4096;
/** The extension line of a log's last checkpoint, before its device wiped it: `ended: factory-reset`. */
export const AUDIT_ENDED_PREFIX = 'ended: ';
const EVENT = /^[a-z][a-z0-9.-]{0,63}$/;
const MAX_FIELD_CHARS = 512;

export interface AuditEntry {
  /** 1 for the first entry, then one more each: the entry's leaf index plus one. */
  seq: number;
  atMs: number;
  /** What happened, e.g. "clip.fetched". */
  event: string;
  /** Plain fields, each at most 512 characters. */
  data: Record<string, string | number | boolean>;
}

/** The log's origin line: the device and the key that signs it (a factory reset starts another log). */
export function auditOrigin(deviceId: string, keyId: string): string {
  return `open-doorbell/${deviceId}/${keyId}/audit`;
}

/** The signed-note key name of a device's checkpoints. */
export function auditKeyName(deviceId: string): string {
  return `open-doorbell/${deviceId}`;
}

/** The verifier of a device's checkpoints, from its pinned key. */
export function auditVerifier(deviceId: string, key: VerifyKey): NoteVerifier {
  const name = auditKeyName(deviceId);
  return { name, hash: keyHash(name, key.publicRaw), key };
}

export function auditLeaf(line: string): Buffer {
  return leafHash(Buffer.from(line, 'utf8'));
}

/** Parses one entry line strictly; throws an Error naming what is wrong. Never anything but Error. */
export function parseAuditLine(line: string, expectedSeq?: number): AuditEntry {
  if (Buffer.byteLength(line, 'utf8') > MAX_AUDIT_LINE_BYTES) throw new Error('line too long');
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new Error('not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
  const o = json as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(',');
  if (keys !== 'atMs,data,event,seq') throw new Error(`unexpected fields ${keys.slice(0, 80)}`);
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 1) throw new Error('bad seq');
  if (expectedSeq !== undefined && o.seq !== expectedSeq)
    throw new Error(`seq ${o.seq}, expected ${expectedSeq}`);
  if (!Number.isSafeInteger(o.atMs) || (o.atMs as number) < 0) throw new Error('bad atMs');
  if (typeof o.event !== 'string' || !EVENT.test(o.event)) throw new Error('bad event');
  const data = o.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('bad data');
  for (const [k, v] of Object.entries(data)) {
    if (!/^[A-Za-z][A-Za-z0-9]{0,31}$/.test(k)) throw new Error('bad data key');
    if (typeof v === 'string' ? v.length > MAX_FIELD_CHARS : typeof v !== 'number' && typeof v !== 'boolean')
      throw new Error('bad data value');
  }
  return { seq: o.seq as number, atMs: o.atMs as number, event: o.event, data: data as AuditEntry['data'] };
}

/** Serialises an entry as the writer does, clipping fields to their cap. */
export function formatAuditLine(
  seq: number,
  atMs: number,
  event: string,
  data: Record<string, string | number | boolean | undefined>,
): string {
  if (!EVENT.test(event)) throw new TypeError(`bad audit event name ${JSON.stringify(event.slice(0, 40))}`);
  const clipped: AuditEntry['data'] = {};
  for (const [k, v] of Object.entries(data)) {
    if (v === undefined || !/^[A-Za-z][A-Za-z0-9]{0,31}$/.test(k)) continue;
    clipped[k] = typeof v === 'string' ? v.slice(0, MAX_FIELD_CHARS) : v;
  }
  return JSON.stringify({ seq, atMs, event, data: clipped });
}

/** A checkpoint a hub saw, with when, for the report. */
export interface SeenCheckpoint {
  note: string;
  seenAtMs: number;
  /** Every checkpoint seen before this one was checked against it (hub/audit/checkpoints.ts). */
  proven?: boolean;
}

export interface AuditCheck {
  entries: AuditEntry[];
  /** Empty when the entries are consistent with every checkpoint. */
  problems: string[];
  /** The newest checkpoint's size that verified, if one did. */
  checkedSize: number;
}

/**
 * Checks a device's entries against signed checkpoints (those a hub kept,
 * and the one the device just sent): each checkpoint must verify with the
 * device's key and name this log's origin, must not cover more entries than
 * the device now has (a cut tail), and the first `size` entries must hash to
 * its root (rewritten or removed entries). Every entry must parse, numbered
 * from 1. Never throws.
 */
export function checkAuditLog(
  lines: readonly string[],
  checkpoints: readonly SeenCheckpoint[],
  verifier: NoteVerifier,
  origin: string,
): AuditCheck {
  const problems: string[] = [];
  const entries: AuditEntry[] = [];
  for (const [i, line] of lines.entries()) {
    try {
      entries.push(parseAuditLine(line, i + 1));
    } catch (err) {
      problems.push(`entry ${i + 1} is malformed: ${(err as Error).message}`);
    }
  }
  const leaves = lines.map(auditLeaf);
  let checkedSize = 0;
  for (const seen of checkpoints) {
    const when = new Date(seen.seenAtMs).toISOString();
    const kept = openKept(seen, when, verifier, origin, problems);
    if (!kept) continue;
    const { size, root } = kept;
    if (size > lines.length) {
      problems.push(`truncated: at ${when} the device signed ${size} entries; it now has ${lines.length}`);
      continue;
    }
    if (!rootOf(leaves.slice(0, size)).equals(root)) {
      problems.push(`rewritten: the first ${size} entries are not those the device signed at ${when}`);
      continue;
    }
    checkedSize = Math.max(checkedSize, size);
  }
  return { entries, problems, checkedSize };
}

/** A device's answer to GetAuditConsistency: its checkpoint now, and a proof from each size asked for. */
export interface ConsistencyAnswer {
  checkpoint: string;
  proofs: ReadonlyArray<{ fromSize: number; hashes: readonly Uint8Array[] }>;
}

export interface ConsistencyCheck {
  /** Empty when the log the device signed now extends every checkpoint given. */
  problems: string[];
  /** The size of the device's checkpoint now (0 if it did not verify). */
  size: number;
}

/**
 * Checks, without the entries, that the log the device signed now extends
 * each kept checkpoint: each must verify with the device's key and name this
 * log, cover no more entries than the new checkpoint (else truncated), and the
 * device's RFC 6962 consistency proof from its size must lead from its root
 * to the new root (else rewritten). The problems read as checkAuditLog's do.
 * Never throws.
 */
export function checkAuditConsistency(
  kept: readonly SeenCheckpoint[],
  answer: ConsistencyAnswer,
  verifier: NoteVerifier,
  origin: string,
): ConsistencyCheck {
  const problems: string[] = [];
  let now: { size: number; root: Buffer };
  try {
    const c = parseCheckpoint(openNote(answer.checkpoint, verifier));
    if (c.origin !== origin) throw new NoteError(`it is of another log (${c.origin.slice(0, 120)})`);
    now = { size: c.size, root: c.root };
  } catch (err) {
    return { problems: [`the device's checkpoint does not verify: ${describe(err)}`], size: 0 };
  }
  for (const seen of kept) {
    const when = new Date(seen.seenAtMs).toISOString();
    const opened = openKept(seen, when, verifier, origin, problems);
    if (!opened) continue;
    const { size, root } = opened;
    if (size > now.size) {
      problems.push(`truncated: at ${when} the device signed ${size} entries; it now has ${now.size}`);
      continue;
    }
    try {
      if (size === 0) {
        if (!root.equals(EMPTY_ROOT)) throw new MerkleProofError('an empty log with a root of entries');
        continue;
      }
      const proof = answer.proofs.find((p) => p.fromSize === size);
      if (!proof) {
        problems.push(`the device sent no consistency proof from ${size} entries`);
        continue;
      }
      verifyConsistency(size, now.size, root, now.root, proof.hashes);
    } catch (err) {
      problems.push(
        `rewritten: the first ${size} entries are not those the device signed at ${when} (${describe(err)})`,
      );
    }
  }
  return { problems, size: now.size };
}

/** A kept checkpoint's size and root, or undefined with the reason added to `problems`. */
function openKept(
  seen: SeenCheckpoint,
  when: string,
  verifier: NoteVerifier,
  origin: string,
  problems: string[],
): { size: number; root: Buffer } | undefined {
  try {
    const c = parseCheckpoint(openNote(seen.note, verifier));
    if (c.origin === origin) return { size: c.size, root: c.root };
    problems.push(`the checkpoint seen at ${when} is of another log (${c.origin.slice(0, 120)})`);
  } catch (err) {
    problems.push(`the checkpoint seen at ${when} does not verify: ${describe(err)}`);
  }
  return undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Checks a device's proof of one audit entry (GetAuditProof: a C2SP
 * tlog-proof whose `extra` is the entry line) offline, with the device's key:
 * returns the entry, its index and the signed tree's size. Throws ProofError.
 */
export function verifyAuditProof(
  text: string,
  verifier: NoteVerifier,
  origin: string,
): { entry: AuditEntry; index: number; size: number } {
  const { extra, index } = parseProof(text);
  if (extra === undefined) throw new ProofError('the proof does not carry its entry (extra)');
  const line = extra.toString('utf8');
  let entry: AuditEntry;
  try {
    entry = parseAuditLine(line, index + 1);
  } catch (err) {
    throw new ProofError(`the entry is malformed: ${(err as Error).message}`);
  }
  const size = verifyProof(text, auditLeaf(line), verifier, origin);
  return { entry, index, size };
}
