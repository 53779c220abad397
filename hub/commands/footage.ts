import { copyFile, rename } from 'node:fs/promises';
import { ITEM_ID_PATTERN } from '../../proto/footage.js';
import { doorbell } from '../../proto/index.js';
import type { ItemMeta } from '../../proto/item-meta.js';
import { ADMINISTER_MAX_LIFETIME_MS } from '../../proto/roles.js';
import { DecryptError, openItemMeta, readIdentityFile } from '../footage/decrypt.js';
import { FetchError, fetchItem } from '../footage/fetch.js';
import { fetchAndDecrypt } from '../footage/get.js';
import { type CatalogEntry, FootageStore } from '../footage/store.js';
import { loadDevices } from '../hub-state.js';
import type { CommandSession } from '../session.js';
import { type Context, UsageError } from './context.js';
import { openDeviceSession } from './device-session.js';

export interface ClipsFilter {
  since?: string;
  until?: string;
  kind?: string;
  reason?: string;
  /** The owner's age identity file: it opens each item's sealed metadata (times, kind, trigger). */
  identity?: string;
}

export interface ClipGetOptions {
  device?: string;
  output?: string;
  identity?: string;
  raw: boolean;
}

/** A time flag: Unix milliseconds or an ISO 8601 date/time. */
export function parseTimeFlag(text: string | undefined, flag: string): number {
  if (text === undefined) return 0;
  const ms = /^\d{1,16}$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new UsageError(`${flag} must be Unix milliseconds or an ISO 8601 time, got '${text}'`);
  }
  return ms;
}

async function open(ctx: Context, deviceId: string, asFlag: string | undefined, data: boolean) {
  const { session, as } = await openDeviceSession(ctx, deviceId, data ? 'fetchItem' : 'listItems', asFlag, {
    data,
  });
  return { session, ttlMs: as === 'owner' ? ADMINISTER_MAX_LIFETIME_MS : undefined };
}

/** Every stored item, page by page, oldest first. */
export async function listAll(
  ctx: Context,
  session: CommandSession,
  deviceId: string,
  ttlMs: number | undefined,
): Promise<doorbell.v1.IStoredItem[]> {
  const items: doorbell.v1.IStoredItem[] = [];
  let afterId = '';
  for (;;) {
    const { result } = await session.commander.send(
      deviceId,
      { listItems: { afterId } },
      ctx.timeoutMs,
      ttlMs ? { ttlMs } : {},
    );
    if (!result.ok) {
      throw new Error(
        `${deviceId} refused the listing: ${doorbell.v1.ErrorKind[result.errorKind]}: ${result.errorMessage}`,
      );
    }
    items.push(...(result.items?.items ?? []));
    afterId = result.items?.nextAfterId ?? '';
    if (afterId === '') return items;
  }
}

/** A listed item with its metadata opened, or why it could not be. */
export interface OpenedItem {
  item: doorbell.v1.IStoredItem;
  id: string;
  sha256: string;
  meta?: ItemMeta;
  unreadable?: string;
}

/** Opens each item's sealed metadata with the owner's identities (never throws for one item). */
export async function openItems(
  items: doorbell.v1.IStoredItem[],
  identities: readonly string[] | undefined,
): Promise<OpenedItem[]> {
  const out: OpenedItem[] = [];
  for (const item of items) {
    const id = item.id ?? '';
    const sha256 = Buffer.from(item.sha256 ?? []).toString('hex');
    if (identities === undefined) {
      out.push({ item, id, sha256 });
      continue;
    }
    try {
      const meta = await openItemMeta({ id, sha256, meta: item.meta ?? undefined }, identities);
      out.push({ item, id, sha256, meta });
    } catch (err) {
      out.push({ item, id, sha256, unreadable: err instanceof DecryptError ? err.message : String(err) });
    }
  }
  return out;
}

/** Whether an opened item passes the owner-side filter (overlap with [since, until], kind, trigger). */
function matches(
  o: OpenedItem,
  f: { since: number; until: number; kind?: string; reason?: string },
): boolean {
  const m = o.meta;
  if (m === undefined)
    return f.since === 0 && f.until === 0 && f.kind === undefined && f.reason === undefined;
  if (f.since !== 0 && m.endMs < f.since) return false;
  if (f.until !== 0 && m.startMs > f.until) return false;
  if (f.kind !== undefined && m.kind !== f.kind) return false;
  if (f.reason !== undefined && !m.reasons.includes(f.reason)) return false;
  return true;
}

export async function clips(
  ctx: Context,
  deviceId: string,
  f: ClipsFilter,
  asFlag?: string,
): Promise<number> {
  if (f.kind !== undefined && f.kind !== 'clip' && f.kind !== 'snapshot') {
    throw new UsageError(`--kind is clip or snapshot, got '${f.kind}'`);
  }
  const filter = {
    since: parseTimeFlag(f.since, '--since'),
    until: parseTimeFlag(f.until, '--until'),
    ...(f.kind !== undefined ? { kind: f.kind } : {}),
    ...(f.reason !== undefined ? { reason: f.reason } : {}),
  };
  if (filter.until !== 0 && filter.until < filter.since) throw new UsageError('--until is before --since');
  const filtered = filter.since !== 0 || filter.until !== 0 || f.kind !== undefined || f.reason !== undefined;
  if (filtered && f.identity === undefined) {
    throw new UsageError(
      "--since, --until, --kind and --reason need --identity: only the owner's age identity reads when an item was recorded and why",
    );
  }
  const identities = f.identity === undefined ? undefined : await readIdentityFile(f.identity).catch(usage);
  const { session, ttlMs } = await open(ctx, deviceId, asFlag, false);
  try {
    const opened = (await openItems(await listAll(ctx, session, deviceId, ttlMs), identities)).filter((o) =>
      matches(o, filter),
    );
    if (ctx.json) {
      for (const o of opened) process.stdout.write(`${JSON.stringify(itemJson(deviceId, o))}\n`);
    } else {
      process.stdout.write(itemsTable(opened, identities !== undefined));
    }
    return 0;
  } finally {
    await session.close();
  }
}

function itemJson(deviceId: string, o: OpenedItem) {
  const m = o.meta;
  return {
    deviceId,
    id: o.id,
    bytes: Number(o.item.bytes),
    sha256: o.sha256,
    expiresMs: Number(o.item.expiresMs),
    ...(m
      ? {
          kind: m.kind,
          reason: m.reason,
          reasons: m.reasons,
          startMs: m.startMs,
          endMs: m.endMs,
          triggerMs: m.triggerMs,
          durationMs: m.endMs - m.startMs,
          truncated: m.truncated,
          recipients: m.recipients,
        }
      : {}),
    ...(o.unreadable !== undefined ? { unreadable: o.unreadable } : {}),
  };
}

const utc = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

function itemsTable(items: OpenedItem[], opened: boolean): string {
  if (items.length === 0) return 'no clips or snapshots stored\n';
  const rows = items.map((o) => {
    const m = o.meta;
    const base = [o.id, `${Number(o.item.bytes)}`, o.sha256.slice(0, 16), utc(Number(o.item.expiresMs))];
    if (!opened) return base;
    if (m === undefined) return [...base, '?', '?', '?', '?', `metadata unreadable: ${o.unreadable ?? ''}`];
    return [
      ...base,
      m.kind,
      m.reasons.join('+'),
      utc(m.startMs),
      `${((m.endMs - m.startMs) / 1000).toFixed(1)} s`,
      m.recipients.join(','),
    ];
  });
  const head = ['ID', 'BYTES', 'SHA-256', 'EXPIRES (UTC)'];
  if (opened) head.push('KIND', 'TRIGGER', 'START (UTC)', 'LENGTH', 'RECIPIENTS');
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) =>
    `${r
      .map((v, c) => v.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd()}\n`;
  const note = opened ? '' : '(kind, trigger and times are sealed to the owners: add --identity FILE)\n';
  return line(head) + rows.map(line).join('') + note;
}

async function pickDevice(ctx: Context, device: string | undefined): Promise<string> {
  if (device !== undefined) return device;
  const devices = [...(await loadDevices(ctx.stateDir)).keys()];
  if (devices.length === 1 && devices[0] !== undefined) return devices[0];
  throw new UsageError(
    devices.length === 0
      ? 'no doorbell is paired (see pair)'
      : `several doorbells are paired: name one with --device (${devices.join(', ')})`,
  );
}

/** A progress line on a terminal, redrawn at most every 100 ms; nothing on a pipe. */
function progressReporter(label: string): { update(n: number, total: number): void; end(): void } {
  if (!process.stderr.isTTY) return { update() {}, end() {} };
  let last = 0;
  let shown = false;
  return {
    update(n, total) {
      const now = Date.now();
      if (now - last < 100 && n < total) return;
      last = now;
      shown = true;
      const pct = total > 0 ? Math.floor((n * 100) / total) : 100;
      const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
      process.stderr.write(`\r${label} [${bar}] ${pct}% ${n}/${total} bytes`);
    },
    end() {
      if (shown) process.stderr.write('\n');
    },
  };
}

export async function clipGet(
  ctx: Context,
  itemId: string,
  o: ClipGetOptions,
  asFlag?: string,
): Promise<number> {
  if (!ITEM_ID_PATTERN.test(itemId)) throw new UsageError(`'${itemId}' is not an item id (see clips)`);
  if (!o.raw && o.identity === undefined) {
    throw new UsageError('clip get needs --identity FILE (an age identity that is a recipient) or --raw');
  }
  // Read the identity first: a wrong path must not cost a transfer.
  const identities = o.identity === undefined ? [] : await readIdentityFile(o.identity).catch(usage);
  const deviceId = await pickDevice(ctx, o.device);
  const store = new FootageStore(ctx.stateDir);
  const { session, ttlMs } = await open(ctx, deviceId, asFlag, true);
  const progress = progressReporter(`fetching ${itemId}`);
  // Ctrl-C stops the transfer cleanly: what arrived stays for the next `clip get` to resume.
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // The plaintext is decrypted as the chunks arrive, into a file renamed once the whole hash is checked.
  const tmp = `${o.output ?? itemId}.part`;
  let fetched: Awaited<ReturnType<typeof fetchItem>>;
  let decrypted: Awaited<ReturnType<typeof fetchAndDecrypt>> | undefined;
  try {
    const fetchOptions = {
      commander: session.commander,
      watcher: session.watcher,
      store,
      deviceId,
      itemId,
      logger: ctx.logger,
      commandTimeoutMs: ctx.timeoutMs,
      ...(ttlMs ? { ttlMs } : {}),
      onProgress: (n: number, total: number) => progress.update(n, total),
      signal: abort.signal,
    };
    if (o.raw) fetched = await fetchItem(fetchOptions);
    else {
      decrypted = await fetchAndDecrypt(fetchOptions, identities, tmp);
      fetched = decrypted.fetched;
    }
  } catch (err) {
    if (err instanceof FetchError)
      throw new Error(`fetching ${itemId} from ${deviceId} failed (${err.kind}): ${err.message}`);
    throw err;
  } finally {
    progress.end();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await session.close();
  }
  // The kind is sealed: with the owner's identity the file gets its extension, else a plain `.age`.
  const meta = await entryMeta(fetched.entry, identities);
  const ext = meta?.kind === 'snapshot' ? 'jpg' : 'mp4';
  const output = o.output ?? (o.raw ? (meta ? `${itemId}.${ext}.age` : `${itemId}.age`) : `${itemId}.${ext}`);
  if (o.raw) {
    await copyFile(fetched.path, output);
  } else if (decrypted?.decryptError) {
    throw new Error(
      `${itemId}: ${decrypted.decryptError.message}; the ciphertext is kept at ${fetched.path}`,
    );
  } else {
    await rename(tmp, output);
  }
  const how = fetched.transferred === 0 ? 'already on this hub' : `${fetched.transferred} bytes fetched`;
  const resumed = fetched.resumedAt > 0 && fetched.transferred > 0 ? `, resumed at ${fetched.resumedAt}` : '';
  process.stderr.write(
    `${itemId}: ${how}${resumed}; SHA-256 checked; wrote ${output}${o.raw ? ' (ciphertext)' : ''}\n`,
  );
  if (ctx.json) {
    process.stdout.write(
      `${JSON.stringify({ deviceId, id: itemId, output, raw: o.raw, sha256: fetched.entry.sha256, bytes: fetched.entry.bytes, transferred: fetched.transferred, resumedAt: fetched.resumedAt })}\n`,
    );
  }
  return 0;
}

/** A catalog entry's sealed metadata, opened with the owner's identities; undefined when it cannot be. */
export async function entryMeta(
  entry: CatalogEntry,
  identities: readonly string[],
): Promise<ItemMeta | undefined> {
  if (identities.length === 0 || entry.meta === undefined) return undefined;
  return openItemMeta(
    { id: entry.id, sha256: entry.sha256, meta: Buffer.from(entry.meta, 'base64') },
    identities,
  ).catch(() => undefined);
}

function usage(err: unknown): never {
  throw new UsageError((err as Error).message);
}

/**
 * Deletes items on the doorbell (DeleteItems, Administer: the owner key unless the hub key
 * holds Administer) and then from this hub's store. Both are done even when the doorbell no
 * longer has an item; the doorbell logs each deletion in its audit log.
 */
export async function clipDelete(
  ctx: Context,
  itemIds: string[],
  device: string | undefined,
  asFlag?: string,
): Promise<number> {
  if (itemIds.length === 0 || itemIds.length > 100)
    throw new UsageError('clip delete takes 1 to 100 item ids');
  for (const id of itemIds)
    if (!ITEM_ID_PATTERN.test(id)) throw new UsageError(`'${id}' is not an item id (see clips)`);
  const deviceId = await pickDevice(ctx, device);
  const { session } = await openDeviceSession(ctx, deviceId, 'deleteItems', asFlag);
  let result: doorbell.v1.CommandResult;
  try {
    result = await session.send(deviceId, { deleteItems: { itemIds } }, ctx.timeoutMs);
  } finally {
    await session.close();
  }
  if (!result.ok) {
    process.stderr.write(
      `doorbell-hub: ${deviceId} refused the deletion: ${doorbell.v1.ErrorKind[result.errorKind]}: ${result.errorMessage}; nothing was deleted on this hub\n`,
    );
    return 1;
  }
  const onHub = await new FootageStore(ctx.stateDir).forget(deviceId, itemIds);
  const out = {
    deviceId,
    deletedOnDevice: result.deleted?.itemIds ?? [],
    notOnDevice: result.deleted?.notFound ?? [],
    deletedOnHub: onHub,
  };
  process.stdout.write(
    ctx.json
      ? `${JSON.stringify(out)}\n`
      : `deleted on ${deviceId}: ${out.deletedOnDevice.length} (not stored there: ${out.notOnDevice.length}); deleted on this hub: ${onHub.length}\n`,
  );
  return 0;
}
