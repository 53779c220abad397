// Sends one signed command to a doorbell, signed by the least powerful key that may send it, and prints its verified result.
import { existsSync } from 'node:fs';
import { doorbell, loadSigningKey } from '../../proto/index.js';
import { type CommandKind, isRole, roleName } from '../../proto/roles.js';
import type { CommandBody } from '../commander.js';
import { hubKeyPath, setDeviceHubRole } from '../hub-state.js';
import { roleRefusalHint } from '../signer.js';
import { resultToJson } from '../tables.js';
import type { Context } from './context.js';
import { openDeviceSession } from './device-session.js';

export async function sendCommand(
  ctx: Context,
  deviceId: string,
  body: CommandBody,
  asFlag: string | undefined,
  /** A table for people (without --json), for a result that has what it shows. */
  render?: (result: doorbell.v1.ICommandResult) => string | undefined,
): Promise<number> {
  const kind = (Object.keys(body) as CommandKind[]).find((k) => body[k] != null);
  if (kind === undefined) throw new Error('an empty command');
  const { session, as } = await openDeviceSession(ctx, deviceId, kind, asFlag);
  const hubKey = existsSync(hubKeyPath(ctx.stateDir))
    ? await loadSigningKey(hubKeyPath(ctx.stateDir))
    : undefined;
  try {
    const result = await session.send(deviceId, body, ctx.timeoutMs);
    const table = ctx.json || !result.ok ? undefined : render?.(result);
    process.stdout.write(table ?? `${JSON.stringify(resultToJson(deviceId, result))}\n`);
    // A verified key list says what the hub key's role is now: remember it for the next choice.
    const hubEntry = hubKey && result.keys?.keys?.find((k) => k.keyId === hubKey.keyId);
    if (hubEntry && isRole(hubEntry.role))
      await setDeviceHubRole(ctx.stateDir, deviceId, roleName(hubEntry.role));
    if (
      !result.ok &&
      result.errorKind === doorbell.v1.ErrorKind.UNAUTHORISED &&
      / needs /.test(result.errorMessage ?? '')
    ) {
      process.stderr.write(`doorbell-hub: ${roleRefusalHint(kind, as)}\n`);
    }
    return result.ok ? 0 : 1;
  } finally {
    await session.close();
  }
}
