// `share request|list|deny`: footage requests filed with the hub, each step logged by the doorbell.
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ageRecipientProblem,
  doorbell,
  loadSigningKey,
  publicKeyToText,
  recipientForDisplay,
} from '../../proto/index.js';
import { readIdentityFile } from '../footage/decrypt.js';
import { fetchItem } from '../footage/fetch.js';
import { rewrapFile } from '../footage/rewrap.js';
import { FootageStore } from '../footage/store.js';
import { ownerKeyPath } from '../hub-state.js';
import { type Approval, PackageError, signApproval, verifyPackage } from '../shares/package.js';
import { DEFAULT_REQUEST_LIFETIME_MS, type ShareRequest, ShareStore } from '../shares/requests.js';
import { type Context, UsageError } from './context.js';
import { openDeviceSession } from './device-session.js';
import { listAll, openItems, parseTimeFlag } from './footage.js';

export interface ShareRequestFlags {
  name?: string;
  reason?: string;
  since?: string;
  until?: string;
  recipient: string[];
  expires?: string;
}

/** Sends RecordShare (Administer) and returns the doorbell's audit entry index. */
async function record(
  ctx: Context,
  r: ShareRequest,
  event: 'requested' | 'approved' | 'denied' | 'expired',
  approved?: { itemIds: string[]; approvalSha256: Buffer; expiresAtMs: number },
): Promise<number> {
  const { session } = await openDeviceSession(ctx, r.deviceId, 'recordShare', undefined);
  try {
    const result = await session.send(
      r.deviceId,
      {
        recordShare: {
          event,
          requestId: r.id,
          requester: r.requester,
          reason: r.reason,
          fromMs: r.fromMs,
          untilMs: r.untilMs,
          recipient: r.recipient,
          expiresAtMs: approved?.expiresAtMs ?? r.expiresAtMs,
          ...(approved ? { itemIds: approved.itemIds, approvalSha256: approved.approvalSha256 } : {}),
        },
      },
      ctx.timeoutMs,
    );
    if (!result.ok) {
      throw new Error(
        `${r.deviceId} did not log it: ${doorbell.v1.ErrorKind[result.errorKind]}: ${result.errorMessage}; nothing was changed`,
      );
    }
    return Number(result.auditIndex);
  } finally {
    await session.close();
  }
}

export async function shareRequest(ctx: Context, deviceId: string, f: ShareRequestFlags): Promise<number> {
  if (!f.name) throw new UsageError('share request needs --name (who asks)');
  if (f.since === undefined || f.until === undefined)
    throw new UsageError('share request needs --since and --until');
  if (f.recipient.length !== 1)
    throw new UsageError("share request needs the requester's --recipient age1...");
  const recipient = f.recipient[0] as string;
  const problem = ageRecipientProblem(recipient);
  if (problem !== undefined)
    throw new UsageError(`--recipient ${recipientForDisplay(recipient)}: ${problem}`);
  const now = Date.now();
  const request: ShareRequest = {
    id: ShareStore.newId(),
    deviceId,
    requester: f.name,
    reason: f.reason ?? '',
    fromMs: parseTimeFlag(f.since, '--since'),
    untilMs: parseTimeFlag(f.until, '--until'),
    recipient,
    createdAtMs: now,
    expiresAtMs: f.expires ? parseTimeFlag(f.expires, '--expires') : now + DEFAULT_REQUEST_LIFETIME_MS,
    state: 'open',
  };
  if (request.untilMs < request.fromMs) throw new UsageError('--until is before --since');
  if (request.expiresAtMs <= now) throw new UsageError('--expires is in the past');
  // Logged on the doorbell first: a request the doorbell did not log is not filed.
  const auditIndex = await record(ctx, request, 'requested');
  await new ShareStore(ctx.stateDir).put({ ...request, auditIndex });
  process.stdout.write(
    ctx.json
      ? `${JSON.stringify({ ...request, auditIndex })}\n`
      : `request ${request.id} filed (${deviceId} logged it as entry ${auditIndex + 1}); the owner answers with share approve or share deny\n`,
  );
  return 0;
}

/** Lists requests; those past their expiry are marked and logged as expired (never approved). */
export async function shareList(ctx: Context): Promise<number> {
  const store = new ShareStore(ctx.stateDir);
  const now = Date.now();
  for (const r of await store.list()) {
    if (r.state !== 'open' || r.expiresAtMs > now) continue;
    const auditIndex = await record(ctx, r, 'expired');
    await store.put({ ...r, state: 'expired', auditIndex });
  }
  const all = await store.list();
  if (ctx.json) {
    for (const r of all) process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  if (all.length === 0) process.stdout.write('no footage requests\n');
  for (const r of all) {
    const window = `${new Date(r.fromMs).toISOString()} .. ${new Date(r.untilMs).toISOString()}`;
    process.stdout.write(
      `${r.id}  ${r.state.padEnd(8)}  ${r.deviceId}  ${r.requester}: ${r.reason || '(no reason)'}  [${window}]  expires ${new Date(r.expiresAtMs).toISOString()}\n`,
    );
  }
  return 0;
}

export async function shareDeny(ctx: Context, id: string): Promise<number> {
  const store = new ShareStore(ctx.stateDir);
  const r = await store.get(id);
  if (!r) throw new UsageError(`no footage request ${id} (see share list)`);
  if (r.state !== 'open') throw new UsageError(`request ${id} is ${r.state}, not open`);
  const auditIndex = await record(ctx, r, 'denied');
  await store.put({ ...r, state: 'denied', auditIndex });
  process.stdout.write(`request ${id} denied (${r.deviceId} logged it as entry ${auditIndex + 1})\n`);
  return 0;
}

export interface ShareApproveFlags {
  clips?: string;
  identity?: string;
  output?: string;
  expires?: string;
}

const APPROVAL_LIFETIME_MS = 30 * 24 * 3600 * 1000;

/**
 * Approves an open request for exactly the named items, each inside the
 * request's time window: signs the approval with the owner key, re-addresses
 * each item to the requester (rewrap.ts: the owner's identity unwraps the file
 * key here, on the owner's machine), has the doorbell log the approval, and
 * writes the share package with the proof of that entry. If any step fails,
 * nothing is logged or written.
 */
export async function shareApprove(ctx: Context, id: string, f: ShareApproveFlags): Promise<number> {
  const store = new ShareStore(ctx.stateDir);
  const r = await store.get(id);
  if (!r) throw new UsageError(`no footage request ${id} (see share list)`);
  if (r.state !== 'open') throw new UsageError(`request ${id} is ${r.state}, not open`);
  if (r.expiresAtMs <= Date.now()) throw new UsageError(`request ${id} has expired (share list logs it)`);
  const itemIds = (f.clips ?? '').split(',').filter((c) => c !== '');
  if (itemIds.length < 1 || itemIds.length > 100)
    throw new UsageError('share approve needs --clips ID[,ID...] (1 to 100)');
  if (f.identity === undefined)
    throw new UsageError("share approve needs --identity: the owner's age identity file");
  const identities = await readIdentityFile(f.identity).catch((err: Error) => {
    throw new UsageError(err.message);
  });
  if (!existsSync(ownerKeyPath(ctx.stateDir)))
    throw new UsageError('an approval is signed by the owner key; this hub has none');
  const owner = await loadSigningKey(ownerKeyPath(ctx.stateDir));
  const output = f.output ?? `share-${id}`;
  if (existsSync(output)) throw new UsageError(`${output} exists; name another with -o`);
  const expiresAtMs = f.expires ? parseTimeFlag(f.expires, '--expires') : Date.now() + APPROVAL_LIFETIME_MS;

  const tmp = `${output}.part`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'clips'), { recursive: true, mode: 0o700 });
  try {
    const { session, deviceKey } = await openDeviceSession(ctx, r.deviceId, 'fetchItem', undefined, {
      data: true,
    });
    const items: Approval['items'] = [];
    try {
      // The device cannot tell when an item was recorded: the owner's identity opens each
      // item's sealed metadata, and only items inside the request's window may be approved.
      const listed = await openItems(await listAll(ctx, session, r.deviceId, undefined), identities);
      const byId = new Map(listed.map((o) => [o.id, o]));
      const untilMs = r.untilMs || r.fromMs;
      for (const itemId of itemIds) {
        const o = byId.get(itemId);
        if (!o) throw new UsageError(`${itemId} is not stored on ${r.deviceId}; nothing was approved`);
        if (!o.meta)
          throw new UsageError(
            `${itemId}: its metadata cannot be read (${o.unreadable}); nothing was approved`,
          );
        if (o.meta.endMs < r.fromMs || o.meta.startMs > untilMs)
          throw new UsageError(`${itemId} is not stored within the request's window; nothing was approved`);
      }
      for (const itemId of itemIds) {
        const kind = byId.get(itemId)?.meta?.kind ?? 'clip';
        const fetched = await fetchItem({
          commander: session.commander,
          watcher: session.watcher,
          store: new FootageStore(ctx.stateDir),
          deviceId: r.deviceId,
          itemId,
          logger: ctx.logger,
          commandTimeoutMs: ctx.timeoutMs,
        });
        await rewrapFile(fetched.path, join(tmp, 'clips', `${itemId}.age`), identities, [r.recipient]);
        items.push({ id: itemId, kind, sha256: fetched.entry.sha256 });
      }
    } finally {
      await session.close();
    }
    const approval: Approval = {
      version: 1,
      requestId: r.id,
      deviceId: r.deviceId,
      requester: r.requester,
      reason: r.reason,
      recipient: r.recipient,
      items,
      approvedAtMs: Date.now(),
      expiresAtMs,
      approvedBy: publicKeyToText(owner),
    };
    const signed = signApproval(approval, owner);
    const auditIndex = await record(ctx, r, 'approved', {
      itemIds,
      approvalSha256: signed.sha256,
      expiresAtMs,
    });
    const proofSession = await openDeviceSession(ctx, r.deviceId, 'getAuditProof', undefined);
    let proof: string;
    try {
      const { result } = await proofSession.session.commander.send(
        r.deviceId,
        { getAuditProof: { index: auditIndex } },
        ctx.timeoutMs,
      );
      if (!result.ok) throw new Error(`${r.deviceId} gave no proof: ${result.errorMessage}`);
      proof = result.auditProof ?? '';
    } finally {
      await proofSession.session.close();
    }
    await writeFile(join(tmp, 'approval.json'), signed.json);
    await writeFile(join(tmp, 'approval.sig'), `${signed.sig}\n`);
    await writeFile(join(tmp, 'approval.tlog-proof'), proof);
    await writeFile(join(tmp, 'device.txt'), `${r.deviceId} ${publicKeyToText(deviceKey)}\n`);
    await verifyPackage(tmp); // what the requester will check, checked before it leaves
    await rename(tmp, output);
    await store.put({ ...r, state: 'approved', auditIndex });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  process.stdout.write(
    `request ${id} approved for ${itemIds.length} item(s); package ${output} (the requester checks it with: doorbell-hub share verify ${output})\n`,
  );
  return 0;
}

/** `share verify <package>`: offline, for the requester. */
export async function shareVerify(ctx: Context, dir: string): Promise<number> {
  try {
    const v = await verifyPackage(dir);
    const out = {
      ok: true,
      requestId: v.approval.requestId,
      deviceId: v.deviceId,
      deviceKey: v.deviceKey,
      items: v.approval.items.map((i) => i.id),
      approvedBy: v.approval.approvedBy,
      loggedAs: `entry ${v.entrySeq} of ${v.logSize}`,
    };
    process.stdout.write(
      ctx.json
        ? `${JSON.stringify(out)}\n`
        : `verified: ${out.items.length} item(s) approved by ${out.approvedBy} for request ${out.requestId}, logged by ${v.deviceId} (${v.deviceKey}) as ${out.loggedAs}; compare that key with the one the owner gives you\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof PackageError) {
      process.stdout.write(
        `${ctx.json ? JSON.stringify({ ok: false, problem: err.message }) : `NOT VERIFIED: ${err.message}`}\n`,
      );
      return 1;
    }
    throw err;
  }
}
