import { COMMAND_ROLES, type CommandKind, ROLE_NAMES, type RoleName, roleFromName } from '../proto/roles.js';

/** The two keys a hub signs with: the owner key (Administer) and the hub key (its enrolled role). */
export type Signer = 'owner' | 'hub';

export class SignerChoiceError extends Error {}

/** `--as owner|hub`, validated. */
export function parseSigner(text: string | undefined): Signer | undefined {
  if (text === undefined) return undefined;
  if (text !== 'owner' && text !== 'hub')
    throw new SignerChoiceError(`--as takes owner or hub, got '${text}'`);
  return text;
}

/**
 * Which key signs a command, unless `--as` says: the hub key when its role
 * (as enrolled at pairing or last seen in a key list; Operate when unknown,
 * pairing's default) is enough for the command by the wire contract's role
 * table, otherwise the owner key. The least-privileged key that can do the job
 * is used, and every command works after a plain `pair`.
 */
export function chooseSigner(
  kind: CommandKind,
  options: { as?: Signer; hubRole?: RoleName; hasHubKey: boolean; hasOwnerKey: boolean },
): Signer {
  if (options.as !== undefined) return options.as;
  const needed = COMMAND_ROLES[kind];
  if (needed === 'pairing') return 'owner';
  const hubRole = roleFromName(options.hubRole ?? 'operate');
  if (options.hasHubKey && hubRole >= needed) return 'hub';
  if (options.hasOwnerKey) return 'owner';
  return 'hub';
}

/** The next step after a device refused a command for its role: printed under the result. */
export function roleRefusalHint(kind: CommandKind, used: Signer): string {
  const needed = COMMAND_ROLES[kind];
  const neededName = needed === 'pairing' ? 'pairing' : (ROLE_NAMES[needed - 1] ?? String(needed));
  return used === 'hub'
    ? `${kind} needs ${neededName}, more than the hub key's role: sign with the owner key (--as owner), ` +
        `or raise the hub key's role with \`keys role <device-id> <hub key id> ${neededName}\``
    : `${kind} needs ${neededName} and the owner key was refused: it may have been removed or demoted ` +
        '(`keys <device-id>` lists the enrolled keys and their roles)';
}
