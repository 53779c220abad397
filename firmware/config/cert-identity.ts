import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { DoorbellConfig } from './schema.js';

/** The CN of a PEM certificate's subject, if it has one. */
export function commonNameOf(pem: string | Buffer): string | undefined {
  const subject = new X509Certificate(pem).subject;
  return /^CN=(.*)$/m.exec(subject)?.[1];
}

/**
 * Why the broker will refuse this doorbell's client certificate before it
 * connects: the broker binds a doorbell's MQTT client id (its device id) to its
 * certificate's CN. Undefined when the config has no client certificate or it
 * names this device.
 */
export async function certificateIdentityProblem(config: DoorbellConfig): Promise<string | undefined> {
  const certPath = config.broker.cert;
  if (certPath === undefined) return undefined;
  let cn: string | undefined;
  try {
    cn = commonNameOf(await readFile(certPath));
  } catch (err) {
    return `broker.cert ${certPath}: not a readable PEM certificate (${(err as Error).message.split('\n')[0]})`;
  }
  if (cn === undefined) return `broker.cert ${certPath} has no CN; the broker needs the device id there`;
  if (config.deviceId === undefined) {
    return `broker.cert ${certPath} is for '${cn}' but the config sets no deviceId: set "deviceId": "${cn}"`;
  }
  if (cn !== config.deviceId) {
    return (
      `broker.cert ${certPath} is for '${cn}', but this doorbell's deviceId is '${config.deviceId}': ` +
      "the broker refuses a client whose id is not its certificate's CN; use this device's own certificate " +
      `(device-${config.deviceId}.crt from make-broker-config) or set "deviceId": "${cn}"`
    );
  }
  return undefined;
}
