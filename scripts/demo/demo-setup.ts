import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import type { DoorbellConfigInput } from '../../firmware/config/schema.js';
import { identityPath } from '../../firmware/root.js';
import { addDevice, hubKeyPath } from '../../hub/hub-state.js';
import { loadOrCreateSigningKey, publicKeyToText, type SigningKey } from '../../proto/index.js';

export interface DemoLayout {
  root: string;
  deviceId: string;
  deviceStateDir: string;
  hubStateDir: string;
  configPath: string;
  socketPath: string;
  logPath: string;
  /** The demo owner's age identity file (decrypts the demo's clips) and public key. */
  ownerAgeIdentity: string;
  ownerAgeRecipient: string;
  clipsDir: string;
  hubKey: SigningKey;
  deviceKey: SigningKey;
}

/**
 * Lays out a demo installation under `root` (kept between runs, so the
 * doorbell keeps its identity): a hub key, a doorbell identity pinned by the
 * hub, and a doorbell config that trusts the hub and uses the sim hardware.
 */
export async function prepareDemo(root: string, brokerUrl: string): Promise<DemoLayout> {
  const base = resolve(root);
  const deviceId = 'front-door';
  const deviceStateDir = join(base, 'doorbell');
  const hubStateDir = join(base, 'hub');
  await mkdir(base, { recursive: true, mode: 0o700 });
  const { key: hubKey } = await loadOrCreateSigningKey(hubKeyPath(hubStateDir));
  const { key: deviceKey } = await loadOrCreateSigningKey(identityPath(deviceStateDir));
  await addDevice(hubStateDir, deviceId, publicKeyToText(deviceKey), true);
  const socketPath = join(deviceStateDir, 'sim-wires.sock');
  // The demo owner's footage key: clips are encrypted to it, and `age -d -i` opens them.
  const ownerAgeIdentity = join(base, 'owner-age-identity.txt');
  let identity: string;
  try {
    identity = (await readFile(ownerAgeIdentity, 'utf8')).trim();
  } catch {
    identity = await generateX25519Identity();
    await writeFile(ownerAgeIdentity, `${identity}\n`, { mode: 0o600 });
  }
  const ownerAgeRecipient = await identityToRecipient(identity);
  const config: DoorbellConfigInput = {
    deviceId,
    stateDir: deviceStateDir,
    broker: { url: brokerUrl, reconnect: { minMs: 200, maxMs: 5_000 } },
    trust: { hubKeys: [publicKeyToText(hubKey)] },
    // The sim chime has no striker to protect: no minimum gap, so the chime test (r) rings
    // as soon as a press's pulse is over.
    hal: { backend: 'sim', sim: { socket: socketPath }, chime: { minGapMs: 0 } },
    // A small, slow camera (the moving test pattern), so the demo is light on a laptop.
    media: {
      enabled: true,
      camera: {
        width: 320,
        height: 240,
        fps: 15,
        bitrateKbps: 400,
        prerollS: 3,
        postrollS: 3,
        ringDir: join('/dev/shm', `doorbell-demo-ring-${process.pid}`),
      },
      recordMotion: false,
      store: { recipients: [ownerAgeRecipient], maxTotalBytes: 256 * 1024 * 1024 },
    },
    log: { level: 'info' },
  };
  const configPath = join(base, 'doorbell.json');
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  return {
    root: base,
    deviceId,
    deviceStateDir,
    hubStateDir,
    configPath,
    socketPath,
    logPath: join(base, 'doorbell.log'),
    ownerAgeIdentity,
    ownerAgeRecipient,
    clipsDir: join(deviceStateDir, 'clips'),
    hubKey,
    deviceKey,
  };
}
