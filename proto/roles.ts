import { doorbell } from './gen/doorbell.js';

/**
 * Who may do what. Every enrolled key has one role; each role includes those
 * below it (Matter's access control levels).
 */
export const Role = doorbell.v1.Role;
export type Role = doorbell.v1.Role;

export const ROLE_NAMES = ['view', 'operate', 'manage', 'administer'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

const BY_NAME: Readonly<Record<RoleName, Role>> = {
  view: Role.VIEW,
  operate: Role.OPERATE,
  manage: Role.MANAGE,
  administer: Role.ADMINISTER,
};

export function roleFromName(name: RoleName): Role {
  return BY_NAME[name];
}

export function roleName(role: Role): RoleName {
  const name = ROLE_NAMES[role - 1];
  if (name === undefined) throw new RangeError(`not a role: ${role}`);
  return name;
}

/** True for the four real roles (not ROLE_UNSPECIFIED, not an unknown number off the wire). */
export function isRole(value: unknown): value is Role {
  return (
    typeof value === 'number' && Number.isInteger(value) && value >= Role.VIEW && value <= Role.ADMINISTER
  );
}

export type CommandKind = NonNullable<doorbell.v1.Command['kind']>;

/**
 * The one table of the minimum role per command. `pairing` means the command
 * is not authorised by a role at all but by the pairing window and the
 * pairing proof. The `satisfies` clause makes a new command kind without an
 * entry a type error.
 */
export const COMMAND_ROLES = {
  getStatus: Role.VIEW,
  listKeys: Role.VIEW,
  ringChimeTest: Role.OPERATE,
  setChimeMuted: Role.MANAGE,
  addKey: Role.ADMINISTER,
  removeKey: Role.ADMINISTER,
  rotateKey: Role.ADMINISTER,
  setRole: Role.ADMINISTER,
  setRecipients: Role.ADMINISTER,
  openPairingWindow: Role.ADMINISTER,
  otaBegin: Role.ADMINISTER,
  otaChunk: Role.ADMINISTER,
  otaApply: Role.ADMINISTER,
  otaGetState: Role.VIEW,
  listItems: Role.VIEW,
  fetchItem: Role.VIEW,
  getAudit: Role.VIEW,
  deleteItems: Role.ADMINISTER,
  getAuditProof: Role.VIEW,
  getAuditConsistency: Role.VIEW,
  recordShare: Role.ADMINISTER,
  pair: 'pairing',
} as const satisfies Record<CommandKind, Role | 'pairing'>;

/** Administer commands live at most this long (expires_at_ms - issued_at_ms). */
export const ADMINISTER_MAX_LIFETIME_MS = 10_000;
