import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { loadSigningKey, type VerifyKey, verifyKeyOf } from '../../proto/index.js';
import { DaemonPowerSwitch } from './power-switch.js';

export interface SimBoard {
  deviceId: string;
  dir: string;
  configPath: string;
  /** The daemon's sim wire socket. */
  socketPath: string;
  power: DaemonPowerSwitch;
  /** The device's public key (from its identity file), to pin at the hub. Waits for the first boot. */
  deviceKey(timeoutMs?: number): Promise<VerifyKey>;
  /** Cuts the power (SIGKILL by pid) and removes the state directory and the camera's RAM ring. */
  stop(): Promise<void>;
}

/**
 * A sim doorbell daemon's configuration in a temp directory, with its power
 * switch (not yet switched on). Console lines go to `onConsoleLine`.
 */
export async function startSimBoard(options: {
  brokerUrl: string;
  deviceId?: string;
  onConsoleLine?: (line: string) => void;
  onSpawn?: (pid: number) => void;
  /**
   * Runs the board's camera (the sim test picture, dark until the rig's lamp
   * lights it): clips are encrypted to a throw-away age key made here, since
   * the suites check that a clip is recorded, not what it shows.
   */
  camera?: boolean;
}): Promise<SimBoard> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-rig-'));
  const deviceId = options.deviceId ?? 'rig-door';
  const stateDir = join(dir, 'state');
  await mkdir(stateDir, { recursive: true });
  const socketPath = join(stateDir, 'sim-wires.sock');
  // The ring lives in RAM (/dev/shm); a power cut leaves it, so stop() removes it.
  const ringDir = join('/dev/shm', `doorbell-rig-ring-${dir.split('-').pop() ?? process.pid}`);
  const camera = options.camera ? await cameraSection(ringDir) : undefined;
  const config = {
    deviceId,
    stateDir,
    broker: { url: options.brokerUrl, reconnect: { minMs: 100, maxMs: 400 } },
    hal: { backend: 'sim', sim: { socket: socketPath } },
    log: { level: 'info' },
    ...(camera ? { media: camera } : {}),
  };
  const configPath = join(dir, 'doorbell.json');
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const power = new DaemonPowerSwitch({
    configPath,
    ...(options.onConsoleLine ? { onConsoleLine: options.onConsoleLine } : {}),
    ...(options.onSpawn ? { onSpawn: options.onSpawn } : {}),
  });
  const identity = join(stateDir, 'identity.pem');
  return {
    deviceId,
    dir,
    configPath,
    socketPath,
    power,
    async deviceKey(timeoutMs = 20_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        if (existsSync(identity)) {
          try {
            return verifyKeyOf(await loadSigningKey(identity));
          } catch (err) {
            if (performance.now() > deadline) throw err;
          }
        }
        if (performance.now() > deadline)
          throw new Error(`no device identity at ${identity} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      await power.off();
      await rm(dir, { recursive: true, force: true });
      await rm(ringDir, { recursive: true, force: true });
    },
  };
}

/** A small, dark test camera: a press records a 2 s pre-roll clip, the lamp's light is motion. */
async function cameraSection(ringDir: string): Promise<Record<string, unknown>> {
  const recipient = await identityToRecipient(await generateX25519Identity());
  return {
    enabled: true,
    camera: {
      source: { kind: 'test', pattern: 'black' },
      width: 320,
      height: 240,
      fps: 10,
      bitrateKbps: 300,
      segmentS: 1,
      prerollS: 2,
      postrollS: 1,
      ringDir,
    },
    recordMotion: false,
    store: { recipients: [recipient] },
  };
}
