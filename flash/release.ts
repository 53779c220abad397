import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The security counter of bundles built from this tree. Raise it with every
 * release that fixes a vulnerability: boards that committed it never accept
 * (nor boot) a bundle with a lower one.
 */
export const SECURITY_COUNTER = 1;

/** Days a bundle may be installed after it is built (it keeps booting after that). */
export const DEFAULT_EXPIRY_DAYS = 365;

/** Where the development release key lives: outside the repository, per user. */
export function devKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.length > 0 ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'open-doorbell', 'dev-release-key.pem');
}

/** The hardware string for this machine's architecture: `rpi-arm64` on arm64, `sim-x64` on x64. */
export function defaultHardware(arch: string = process.arch): string {
  return arch === 'arm64' || arch === 'arm' ? `open-doorbell/rpi-${arch}` : `open-doorbell/sim-${arch}`;
}
