import { appendFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchMosquitto, type RunningBroker } from '../broker/local-mosquitto.js';
import { type BrokerConfigFiles, makeBrokerConfig, revokeDevice } from '../broker/make-broker-config.js';
import { freePort } from '../common/free-port.js';

export interface RunningTlsBroker extends RunningBroker {
  /** The CA, server, hub and device certificates and keys, the config and the ACL. */
  readonly files: BrokerConfigFiles;
  /** `{ ca, cert, key }` for a device, as `MqttConnection`'s `tls` and the daemon's `broker` take them. */
  deviceTls(deviceId: string): { ca: string; cert: string; key: string };
  hubTls(): { ca: string; cert: string; key: string };
}

export interface TlsBrokerOptions {
  deviceIds: string[];
  hubName?: string;
  /** Devices whose certificates are revoked (in the CRL) before Mosquitto starts. */
  revoked?: string[];
}

/**
 * Starts a real Mosquitto with the locked-down configuration that
 * `broker/make-broker-config.ts` generates (into a fresh temp dir,
 * removed on stop), on a free loopback port. The caller must `stop()` it.
 */
export async function startTlsMosquitto(options: TlsBrokerOptions): Promise<RunningTlsBroker> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-tls-mosquitto-'));
  try {
    const files = await makeBrokerConfig({
      outDir: join(dir, 'broker'),
      deviceIds: options.deviceIds,
      hubName: options.hubName ?? 'hub',
      port,
      // Started as root, Mosquitto drops to the `mosquitto` user before reading
      // the ACL and the 0600 server key; tests keep it as the user who owns them.
      mosquittoUser: process.getuid?.() === 0 ? 'root' : undefined,
    });
    for (const id of options.revoked ?? []) await revokeDevice(files.dir, id);
    await chmod(dir, 0o755);
    await appendFile(
      files.conf,
      ['', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', ''].join('\n'),
    );
    const broker = await launchMosquitto({
      confPath: files.conf,
      port,
      url: `mqtts://127.0.0.1:${port}`,
      cleanupDir: dir,
    });
    const tlsOf = (cert: string, key: string) => ({ ca: files.ca.cert, cert, key });
    return {
      ...broker,
      files,
      deviceTls(deviceId) {
        const device = files.devices.get(deviceId);
        if (!device) throw new Error(`no certificate for device ${deviceId}`);
        return tlsOf(device.cert, device.key);
      },
      hubTls: () => tlsOf(files.hub.cert, files.hub.key),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
