// `keygen` and the `keys` group: list, add, remove, rotate and re-role a doorbell's enrolled keys.
import { loadOrCreateSigningKey, publicKeyToText } from '../../proto/index.js';
import { hubKeyPath } from '../hub-state.js';
import { keysTable } from '../tables.js';
import { type Context, parseKeyText, parseRole, UsageError } from './context.js';
import { sendCommand } from './send.js';

export async function keygen(ctx: Context): Promise<number> {
  const { key, created } = await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir));
  process.stdout.write(
    `${created ? 'created' : 'existing'} hub key ${key.keyId} in ${hubKeyPath(ctx.stateDir)}\n` +
      `public key: ${publicKeyToText(key)}\n` +
      '`pair` enrols it on a doorbell (with the role --hub-role gives, operate by default); a doorbell\n' +
      'paired already takes it with `keys add <device-id> <this key> --role operate`\n',
  );
  return 0;
}

export async function keysCommand(
  ctx: Context,
  args: string[],
  values: { role?: string; label?: string; as?: string },
): Promise<number> {
  const [first = '', ...rest] = args;
  const want = (n: number, usage: string): string[] => {
    if (rest.length !== n) throw new UsageError(`usage: doorbell-hub ${usage}`);
    return rest;
  };
  const admin = values.as;
  switch (first) {
    case 'add': {
      const [id = '', key = ''] = want(2, 'keys add <device-id> <ed25519:...> --role ROLE');
      const role = parseRole(values.role, '--role');
      return sendCommand(
        ctx,
        id,
        { addKey: { publicKey: parseKeyText(key), role, label: values.label ?? '' } },
        admin,
      );
    }
    case 'remove': {
      const [id = '', keyId = ''] = want(2, 'keys remove <device-id> <key-id>');
      return sendCommand(ctx, id, { removeKey: { keyId } }, admin);
    }
    case 'rotate': {
      const [id = '', keyId = '', key = ''] = want(3, 'keys rotate <device-id> <key-id> <ed25519:...>');
      return sendCommand(ctx, id, { rotateKey: { keyId, newPublicKey: parseKeyText(key) } }, admin);
    }
    case 'role': {
      const [id = '', keyId = '', role = ''] = want(3, 'keys role <device-id> <key-id> <role>');
      return sendCommand(ctx, id, { setRole: { keyId, role: parseRole(role, 'role') } }, admin);
    }
    default:
      if (rest.length !== 0) throw new UsageError(`unknown keys subcommand '${first}'`);
      return sendCommand(ctx, first, { listKeys: {} }, values.as, (r) =>
        r.keys ? keysTable(r.keys) : undefined,
      );
  }
}
