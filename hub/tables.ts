import { doorbell, publicKeyToText, verifyKeyFromRaw } from '../proto/index.js';
import { isRole, roleName } from '../proto/roles.js';

/** Columns padded to their widest cell, two spaces apart, a header line first. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** A public key off the wire in the one text form the project shows (`ed25519:...`), or why not. */
export function keyText(raw: Uint8Array | null | undefined): string {
  if (!raw || raw.length === 0) return '-';
  try {
    return publicKeyToText(verifyKeyFromRaw(raw));
  } catch {
    return `(not an Ed25519 key: ${raw.length} bytes)`;
  }
}

/** `keys <device-id>`: the enrolled keys, the footage recipients and the key epoch. */
export function keysTable(list: doorbell.v1.IKeyList): string {
  const rows = (list.keys ?? []).map((k) => [
    k.keyId ?? '',
    isRole(k.role) ? roleName(k.role) : 'no role',
    k.label || '-',
    k.source || '-',
    keyText(k.publicKey),
  ]);
  const recipients = list.footageRecipients ?? [];
  return (
    formatTable(['KEY ID', 'ROLE', 'LABEL', 'SOURCE', 'PUBLIC KEY'], rows) +
    `\nfootage recipients (${recipients.length}):${recipients.map((r) => `\n  ${r}`).join('')}\n` +
    `key epoch: ${list.keyEpoch ?? 0}\n`
  );
}

/** `status <device-id>`: one field a line. */
export function statusLines(status: doorbell.v1.IStatus): string {
  const object = doorbell.v1.Status.toObject(doorbell.v1.Status.fromObject(status), {
    enums: String,
    longs: String,
    defaults: true,
  }) as Record<string, unknown>;
  const rows = Object.entries(object).map(([name, value]) => [
    name.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`),
    typeof value === 'object' ? JSON.stringify(value) : String(value),
  ]);
  return formatTable(['FIELD', 'VALUE'], rows);
}

/** `devices`: the pinned doorbells and their keys. */
export function devicesTable(
  devices: ReadonlyMap<string, { publicKey: string; keyEpoch?: number; hubRole?: string }>,
): string {
  if (devices.size === 0) return 'no doorbell is paired or pinned yet (see pair)\n';
  return formatTable(
    ['DEVICE', 'PUBLIC KEY', 'KEY EPOCH', 'HUB KEY ROLE'],
    [...devices].map(([id, d]) => [
      id,
      d.publicKey,
      d.keyEpoch === undefined ? '-' : String(d.keyEpoch),
      d.hubRole ?? '-',
    ]),
  );
}

/** The JSON of a command result, with public keys in the `ed25519:` text form. */
export function resultToJson(deviceId: string, result: doorbell.v1.ICommandResult): Record<string, unknown> {
  const printable = doorbell.v1.CommandResult.toObject(result as doorbell.v1.CommandResult, {
    enums: String,
    defaults: false,
    bytes: String,
  }) as Record<string, unknown> & { keys?: { keys?: Array<Record<string, unknown>> } };
  for (const [i, k] of (printable.keys?.keys ?? []).entries())
    k.publicKey = keyText(result.keys?.keys?.[i]?.publicKey);
  return { device: deviceId, ...printable };
}
