import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../common/durable-file.js';
import { publicKeyFromText, type VerifyKey, validateDeviceId } from '../proto/index.js';
import { ROLE_NAMES, type RoleName } from '../proto/roles.js';

export const MAX_DEVICES_FILE_BYTES = 1024 * 1024;

const devicesFileSchema = z
  .object({
    devices: z.record(
      z.string(),
      z
        .object({
          publicKey: z.string().max(100),
          addedAt: z.string().max(40).optional(),
          /** The device's key epoch as last seen in a signed result. */
          keyEpoch: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
          /** The hub key's role on this device, as enrolled at pairing or last seen in a key list. */
          hubRole: z.enum(ROLE_NAMES).optional(),
        })
        .strict(),
    ),
  })
  .strict();

export type DevicesFile = z.infer<typeof devicesFileSchema>;

/** The hub's default state directory: $DOORBELL_HUB_STATE, else ~/.local/state/doorbell-hub. */
export function defaultHubStateDir(): string {
  return (
    process.env.DOORBELL_HUB_STATE ??
    join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'doorbell-hub')
  );
}

export const hubKeyPath = (dir: string): string => join(dir, 'hub-key.pem');
export const hubCounterPath = (dir: string): string => join(dir, 'command-counter');
/** The owner's signing key (Administer on paired doorbells) and its command counter. */
export const ownerKeyPath = (dir: string): string => join(dir, 'owner-key.pem');
export const ownerCounterPath = (dir: string): string => join(dir, 'owner-command-counter');
const devicesPath = (dir: string): string => join(dir, 'devices.json');

export class HubStateError extends Error {
  override readonly name = 'HubStateError';
}

/** The device keys this hub pinned, by device id. */
export async function loadDevices(dir: string): Promise<Map<string, VerifyKey>> {
  const parsed = await loadDevicesFile(dir);
  const devices = new Map<string, VerifyKey>();
  for (const [id, entry] of Object.entries(parsed.devices)) {
    try {
      validateDeviceId(id);
      devices.set(id, publicKeyFromText(entry.publicKey));
    } catch (err) {
      throw new HubStateError(`${devicesPath(dir)}: device '${id}': ${(err as Error).message}`);
    }
  }
  return devices;
}

/** The key epoch last seen per device (0 when never seen). */
export async function loadDeviceEpochs(dir: string): Promise<Map<string, number>> {
  const parsed = await loadDevicesFile(dir);
  return new Map(Object.entries(parsed.devices).map(([id, e]) => [id, e.keyEpoch ?? 0]));
}

/**
 * The key epochs this hub knows, for a Commander: `keyEpochOf` answers from
 * devices.json, `onKeyEpoch` records a newer one from a verified result;
 * await `saved()` before exiting.
 */
export async function trackedKeyEpochs(dir: string): Promise<{
  keyEpochOf: (deviceId: string) => number;
  onKeyEpoch: (deviceId: string, keyEpoch: number) => void;
  saved: () => Promise<void>;
}> {
  const epochs = await loadDeviceEpochs(dir);
  const writes: Promise<void>[] = [];
  return {
    keyEpochOf: (id) => epochs.get(id) ?? 0,
    onKeyEpoch: (id, epoch) => {
      epochs.set(id, epoch);
      writes.push(setDeviceEpoch(dir, id, epoch));
    },
    saved: async () => {
      await Promise.all(writes);
    },
  };
}

/** Records a device's key epoch from a verified result. */
export async function setDeviceEpoch(dir: string, deviceId: string, keyEpoch: number): Promise<void> {
  const file = await loadDevicesFile(dir);
  const entry = file.devices[deviceId];
  if (entry === undefined || entry.keyEpoch === keyEpoch) return;
  entry.keyEpoch = keyEpoch;
  await writeDevicesFile(dir, file);
}

/** Records the hub key's role on a device, from a verified pairing or key list. */
export async function setDeviceHubRole(dir: string, deviceId: string, role: RoleName): Promise<void> {
  const file = await loadDevicesFile(dir);
  const entry = file.devices[deviceId];
  if (entry === undefined || entry.hubRole === role) return;
  entry.hubRole = role;
  await writeDevicesFile(dir, file);
}

/** Every pinned device with what the hub knows of it (key, key epoch, the hub key's role). */
export async function loadDeviceEntries(dir: string): Promise<DevicesFile['devices']> {
  await loadDevices(dir); // every entry must be valid
  return (await loadDevicesFile(dir)).devices;
}

/** The hub key's recorded role on a device, if known. */
export async function deviceHubRole(dir: string, deviceId: string): Promise<RoleName | undefined> {
  return (await loadDevicesFile(dir)).devices[deviceId]?.hubRole;
}

async function loadDevicesFile(dir: string): Promise<DevicesFile> {
  const path = devicesPath(dir);
  let text: string;
  try {
    const { size } = await stat(path);
    if (size > MAX_DEVICES_FILE_BYTES)
      throw new HubStateError(`${path} is ${size} bytes; the limit is ${MAX_DEVICES_FILE_BYTES}`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { devices: {} };
    throw err;
  }
  try {
    return devicesFileSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new HubStateError(`${path} is not a valid devices file: ${(err as Error).message}`);
  }
}

async function writeDevicesFile(dir: string, file: DevicesFile): Promise<void> {
  await writeFileDurably(devicesPath(dir), `${JSON.stringify(file, null, 2)}\n`, 0o600);
}

/** Pins a device's public key (replacing an earlier one only with `replace`). */
export async function addDevice(
  dir: string,
  deviceId: string,
  publicKeyText: string,
  replace = false,
  keyEpoch?: number,
): Promise<void> {
  validateDeviceId(deviceId);
  publicKeyFromText(publicKeyText);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await loadDevices(dir); // every entry must still be valid
  const file = await loadDevicesFile(dir);
  const existing = file.devices[deviceId];
  if (existing && existing.publicKey !== publicKeyText && !replace) {
    throw new HubStateError(
      `device '${deviceId}' is already pinned to another key; pass --replace to change it`,
    );
  }
  file.devices[deviceId] = {
    publicKey: publicKeyText,
    addedAt: new Date().toISOString(),
    ...(keyEpoch !== undefined ? { keyEpoch } : {}),
  };
  await writeDevicesFile(dir, file);
}
