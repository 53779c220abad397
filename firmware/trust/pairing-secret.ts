import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../common/durable-file.js';
import { newPairingSecret, PAIRING_SECRET_BYTES } from '../../proto/index.js';

/** Where the pairing secret lives in a state directory. */
export const pairingSecretPath = (stateDir: string): string => join(stateDir, 'pairing-secret');

/**
 * Loads the device's 32-byte pairing secret (base64url text, mode 0600), or
 * creates it on first use. It never leaves the device except in the pairing
 * code shown by `doorbell identity`.
 */
export async function loadOrCreatePairingSecret(stateDir: string): Promise<Buffer> {
  const path = pairingSecretPath(stateDir);
  let text: string;
  try {
    const file = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const st = await file.stat();
      if (!st.isFile() || st.size > 128) throw new Error(`${path} is not a pairing secret file`);
      if ((st.mode & 0o077) !== 0)
        throw new Error(`${path} must not be readable by group or others (chmod 600)`);
      text = await file.readFile('utf8');
    } finally {
      await file.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const secret = newPairingSecret();
    await writeFileDurably(path, `${secret.toString('base64url')}\n`, 0o600);
    return secret;
  }
  const encoded = text.trim();
  const secret = Buffer.from(encoded, 'base64url');
  if (secret.length !== PAIRING_SECRET_BYTES || secret.toString('base64url') !== encoded) {
    throw new Error(`${path} does not hold a ${PAIRING_SECRET_BYTES}-byte secret`);
  }
  return secret;
}
