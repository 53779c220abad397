// `share request|list|deny`: footage requests filed with the hub, each step logged by the doorbell.
import { ageRecipientProblem, doorbell, recipientForDisplay } from '../../proto/index.js';
import { DEFAULT_REQUEST_LIFETIME_MS, type ShareRequest, ShareStore } from '../shares/requests.js';
import { type Context, UsageError } from './context.js';
import { openDeviceSession } from './device-session.js';
import { parseTimeFlag } from './footage.js';

export interface ShareRequestFlags {
  name?: string;
  reason?: string;
  since?: string;
  until?: string;
  recipient: string[];
  expires?: string;
}

/** Sends RecordShare (Administer) and returns the doorbell's audit entry index. */
async function record(ctx: Context, r: ShareRequest, event: ShareRequest['state']): Promise<number> {
  const { session } = await openDeviceSession(ctx, r.deviceId, 'recordShare', undefined);
  try {
    const result = await session.send(
      r.deviceId,
      {
        recordShare: {
          event: event === 'open' ? 'requested' : event,
          requestId: r.id,
          requester: r.requester,
          reason: r.reason,
          fromMs: r.fromMs,
          untilMs: r.untilMs,
          recipient: r.recipient,
          expiresAtMs: r.expiresAtMs,
        },
      },
      ctx.timeoutMs,
    );
    if (!result.ok) {
      throw new Error(
        `${r.deviceId} did not log it: ${doorbell.v1.ErrorKind[result.errorKind]}: ${result.errorMessage}`,
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
  const auditIndex = await record(ctx, request, 'open');
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
