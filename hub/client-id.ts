import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TlsFiles } from '../common/mqtt-connection.js';
import { validateDeviceId } from '../proto/index.js';

/**
 * The MQTT client id of one of the hub's connections.
 *
 * With a TLS client certificate (the locked-down broker of
 * broker/make-broker-config.ts) the id is `<CN>:<name>`: the broker's
 * doorbell_auth plugin lets the hub's certificate use only ids that start with
 * its CN and a `:`, a character no device id contains, so no doorbell can take
 * over (or wipe) a session of the hub's, nor the hub a doorbell's. Without a
 * certificate (a plain loopback broker in development and tests) the id is
 * `doorbell-hub-<name>`.
 *
 * `name` is `purpose` alone when `instance` is 'stable' (e.g. `watch-<hub key
 * id>`, the one persistent session whose queued events wait for the hub), or
 * `purpose-<pid>-<random>` when it is 'unique', so that two commands at once
 * never take over each other's connection (an empty purpose gives
 * `<pid>-<random>`). `purpose` uses letters, digits, `-` and `_`.
 */
export function hubClientId(
  tls: TlsFiles | undefined,
  purpose: string,
  instance: 'stable' | 'unique',
): string {
  const name =
    instance === 'stable'
      ? purpose
      : [purpose, String(process.pid), randomBytes(3).toString('hex')].filter((p) => p !== '').join('-');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name))
    throw new TypeError(`invalid client id purpose ${JSON.stringify(purpose)}`);
  return tls?.cert === undefined ? `doorbell-hub-${name}` : `${certificateCommonName(tls.cert)}:${name}`;
}

/** The one subject CN of the PEM certificate at `path`, checked against the device id / hub name rule. */
export function certificateCommonName(path: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(path));
  } catch (err) {
    throw new Error(`cannot read the TLS client certificate ${path}: ${(err as Error).message}`);
  }
  const names = cert.subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice('CN='.length));
  const [cn] = names;
  if (names.length !== 1 || cn === undefined) {
    throw new Error(`the certificate ${path} must have exactly one subject CN, has ${names.length}`);
  }
  try {
    return validateDeviceId(cn);
  } catch {
    throw new Error(`the CN ${JSON.stringify(cn)} of the certificate ${path} is not a valid hub name`);
  }
}
