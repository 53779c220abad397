// A signed-command session with one pinned doorbell, signed by the least powerful key that may send the command.
import { existsSync } from 'node:fs';
import { topicsFor, type VerifyKey, validateDeviceId } from '../../proto/index.js';
import type { CommandKind } from '../../proto/roles.js';
import { deviceHubRole, hubKeyPath, loadDevices, ownerKeyPath } from '../hub-state.js';
import { type CommandSession, openCommandSession } from '../session.js';
import { chooseSigner, type Signer } from '../signer.js';
import { type Context, signerFlag, UsageError } from './context.js';

export interface DeviceSession {
  session: CommandSession;
  /** The doorbell's pinned key. */
  deviceKey: VerifyKey;
  as: Signer;
}

/**
 * Checks the device id and that it is pinned, chooses the signer for `kind`
 * (proto/roles.ts against the hub key's recorded role; `--as` overrides) and
 * connects. With `data`, the session also receives the device's footage
 * chunks.
 */
export async function openDeviceSession(
  ctx: Context,
  deviceId: string,
  kind: CommandKind,
  asFlag: string | undefined,
  options: { data?: boolean } = {},
): Promise<DeviceSession> {
  validateDeviceId(deviceId);
  const devices = await loadDevices(ctx.stateDir);
  const deviceKey = devices.get(deviceId);
  if (!deviceKey) throw new UsageError(`device '${deviceId}' is not paired or pinned (see pair)`);
  const as = chooseSigner(kind, {
    as: signerFlag(asFlag),
    hubRole: await deviceHubRole(ctx.stateDir, deviceId),
    hasHubKey: existsSync(hubKeyPath(ctx.stateDir)),
    hasOwnerKey: existsSync(ownerKeyPath(ctx.stateDir)),
  });
  const session = await openCommandSession({
    stateDir: ctx.stateDir,
    broker: ctx.broker,
    tls: ctx.tls,
    logger: ctx.logger,
    devices,
    as,
    connectTimeoutMs: ctx.timeoutMs,
    clientPurpose: options.data ? 'fetch' : '',
    ...(options.data ? { extraSubscriptions: [topicsFor(deviceId).data] } : {}),
  });
  return { session, deviceKey, as };
}
