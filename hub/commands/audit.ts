// `audit <device>`: fetches the doorbell's audit log and checks it against every checkpoint this hub has seen.

import { writeFile } from 'node:fs/promises';
import { doorbell } from '../../proto/index.js';
import {
  auditOrigin,
  auditVerifier,
  type ConsistencyAnswer,
  checkAuditConsistency,
  checkAuditLog,
  type SeenCheckpoint,
  verifyAuditProof,
} from '../../proto/tlog/audit.js';
import { openNote, parseCheckpoint } from '../../proto/tlog/note.js';
import { CheckpointStore } from '../audit/checkpoints.js';
import { type Context, UsageError } from './context.js';
import { openDeviceSession } from './device-session.js';

/** Pages fetched at most (each holds at least one entry): bounds a device that never stops answering. */
const MAX_PAGES = 100_000;

/** `audit <device> --proof N`: the C2SP tlog-proof of entry N (its seq), checked, then printed or written. */
export async function auditProof(
  ctx: Context,
  deviceId: string,
  seq: number,
  output?: string,
): Promise<number> {
  if (!Number.isSafeInteger(seq) || seq < 1)
    throw new UsageError('--proof takes an entry number (its seq, from 1)');
  const { session, deviceKey: key } = await openDeviceSession(ctx, deviceId, 'getAuditProof', undefined);
  let proof: string;
  try {
    const { result } = await session.commander.send(
      deviceId,
      { getAuditProof: { index: seq - 1 } },
      ctx.timeoutMs,
    );
    if (!result.ok) {
      throw new Error(
        `${deviceId} refused: ${doorbell.v1.ErrorKind[result.errorKind]}: ${result.errorMessage}`,
      );
    }
    proof = result.auditProof ?? '';
  } finally {
    await session.close();
  }
  // Checked before it is handed on: a proof this hub cannot verify is not one.
  const { entry, size } = verifyAuditProof(
    proof,
    auditVerifier(deviceId, key),
    auditOrigin(deviceId, key.keyId),
  );
  if (output === undefined) process.stdout.write(proof);
  else {
    await writeFile(output, proof, { mode: 0o644 });
    process.stderr.write(`entry ${entry.seq} (${entry.event}) of ${size}: proof written to ${output}\n`);
  }
  return 0;
}

export async function audit(ctx: Context, deviceId: string, verifyOnly: boolean): Promise<number> {
  const { session, deviceKey: key } = await openDeviceSession(ctx, deviceId, 'getAudit', undefined);
  const verifier = auditVerifier(deviceId, key);
  const store = new CheckpointStore(ctx.stateDir);
  const lines: string[] = [];
  let latest = '';
  try {
    for (let page = 0; page < MAX_PAGES; page++) {
      const { result } = await session.commander.send(
        deviceId,
        { getAudit: { from: lines.length } },
        ctx.timeoutMs,
      );
      if (!result.ok) {
        throw new Error(
          `${deviceId} refused: ${doorbell.v1.ErrorKind[result.errorKind]}: ${result.errorMessage}`,
        );
      }
      const got = result.audit;
      if (!got || Number(got.from) !== lines.length) throw new Error(`${deviceId} answered another page`);
      lines.push(...(got.entries ?? []));
      latest = got.checkpoint ?? '';
      // The checkpoint is signed as each page is answered: done once it covers no more than we have.
      const size = checkpointSize(latest, verifier);
      if ((got.entries ?? []).length === 0 || size <= lines.length) break;
    }
  } finally {
    await session.close();
  }
  const now = Date.now();
  const seen = await store.list(deviceId);
  const check = checkAuditLog(
    lines,
    [...seen, { note: latest, seenAtMs: now }],
    verifier,
    auditOrigin(deviceId, key.keyId),
  );
  // The device's newest checkpoint is kept only when it is consistent: a bad one stays evidence in the report.
  if (check.problems.length === 0) await store.add(deviceId, latest, now, true);
  if (ctx.json) {
    process.stdout.write(
      `${JSON.stringify({ deviceId, entries: lines.length, checkpoints: seen.length + 1, ok: check.problems.length === 0, problems: check.problems, ...(verifyOnly ? {} : { log: check.entries }) })}\n`,
    );
  } else {
    if (!verifyOnly) {
      for (const e of check.entries) {
        const data = Object.entries(e.data)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        process.stdout.write(
          `${String(e.seq).padStart(6)}  ${new Date(e.atMs).toISOString()}  ${e.event}  ${data}\n`,
        );
      }
    }
    if (check.problems.length === 0) {
      process.stdout.write(
        `audit log of ${deviceId}: ${lines.length} entries, consistent with ${seen.length + 1} signed checkpoint(s)\n`,
      );
    } else {
      process.stdout.write(`audit log of ${deviceId}: NOT CONSISTENT\n`);
      for (const p of check.problems) process.stdout.write(`  ${p}\n`);
    }
  }
  return check.problems.length === 0 ? 0 : 1;
}

/** Sizes one GetAuditConsistency asks for besides the link to the previous answer (the device takes 8). */
const SIZES_PER_ASK = 7;

/**
 * `audit <device> --consistency`: checks by RFC 6962 consistency proofs,
 * fetching no entries, that the doorbell's log now extends every checkpoint
 * this hub kept since the last one proven. Each answer after the first also
 * proves the previous answer's checkpoint, so all are links of one chain;
 * the device's newest checkpoint is then kept as proven.
 */
export async function auditConsistency(ctx: Context, deviceId: string): Promise<number> {
  const { session, deviceKey: key } = await openDeviceSession(
    ctx,
    deviceId,
    'getAuditConsistency',
    undefined,
  );
  const verifier = auditVerifier(deviceId, key);
  const origin = auditOrigin(deviceId, key.keyId);
  const store = new CheckpointStore(ctx.stateDir);
  const seen = await store.list(deviceId);
  const from = seen.findLastIndex((s) => s.proven);
  const pending = seen.slice(Math.max(0, from));
  const problems: string[] = [];
  let answer: ConsistencyAnswer;
  let size: number;
  const ask = async (sizes: number[]): Promise<ConsistencyAnswer> => {
    const { result } = await session.commander.send(
      deviceId,
      { getAuditConsistency: { fromSizes: sizes } },
      ctx.timeoutMs,
    );
    if (!result.ok) {
      throw new Error(
        `${deviceId} refused: ${doorbell.v1.ErrorKind[result.errorKind]}: ${result.errorMessage}`,
      );
    }
    const got = result.auditConsistency;
    return {
      checkpoint: got?.checkpoint ?? '',
      proofs: (got?.proofs ?? []).map((p) => ({ fromSize: Number(p.fromSize), hashes: p.hashes ?? [] })),
    };
  };
  try {
    // The log's size now first: a kept checkpoint beyond it is a cut tail, not a question to ask.
    answer = await ask([0]);
    const first = checkAuditConsistency([], answer, verifier, origin);
    problems.push(...first.problems);
    size = first.size;
    const bySize = new Map<number, SeenCheckpoint[]>();
    const now: SeenCheckpoint[] = [];
    for (const s of pending) {
      const n = checkpointSize(s.note, verifier);
      if (n === 0 || n > size) now.push(s);
      else bySize.set(n, [...(bySize.get(n) ?? []), s]);
    }
    if (first.problems.length === 0) {
      problems.push(...checkAuditConsistency(now, answer, verifier, origin).problems);
      const sizes = [...bySize.keys()];
      for (let i = 0; i < sizes.length; i += SIZES_PER_ASK) {
        const batch = sizes.slice(i, i + SIZES_PER_ASK);
        const previous = { note: answer.checkpoint, seenAtMs: Date.now() };
        answer = await ask([...batch, size]);
        const kept = batch.flatMap((n) => bySize.get(n) ?? []);
        const check = checkAuditConsistency([...kept, previous], answer, verifier, origin);
        problems.push(...check.problems);
        size = check.size;
      }
    }
  } finally {
    await session.close();
  }
  if (problems.length === 0) await store.add(deviceId, answer.checkpoint, Date.now(), true);
  if (ctx.json) {
    process.stdout.write(
      `${JSON.stringify({ deviceId, entries: size, checkpoints: pending.length, ok: problems.length === 0, problems })}\n`,
    );
  } else if (problems.length === 0) {
    process.stdout.write(
      `audit log of ${deviceId}: ${size} entries, proven to extend ${pending.length} kept checkpoint(s) (no entries fetched)\n`,
    );
  } else {
    process.stdout.write(`audit log of ${deviceId}: NOT CONSISTENT\n`);
    for (const p of problems) process.stdout.write(`  ${p}\n`);
  }
  return problems.length === 0 ? 0 : 1;
}

function checkpointSize(note: string, verifier: ReturnType<typeof auditVerifier>): number {
  try {
    return parseCheckpoint(openNote(note, verifier)).size;
  } catch {
    return 0;
  }
}
