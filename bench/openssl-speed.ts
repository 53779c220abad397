import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * OpenSSL's own Ed25519 sign and verify times on this machine (warm, one
 * core), measured in the same run: the cryptographic floor of one signed,
 * verified event, which the raw MQTT baseline does not pay.
 */
export async function ed25519Speed(): Promise<{ sign_us: number; verify_us: number }> {
  const { stdout } = await run('openssl', ['speed', '-seconds', '1', 'ed25519'], { timeout: 30_000 });
  // "253 bits EdDSA (Ed25519)   0.0000s   0.0001s  26998.0   9892.0"
  const line = stdout.split('\n').find((l) => /Ed25519/.test(l) && /\d+\.\d+\s+\d+\.\d+\s*$/.test(l));
  const match = line?.match(/([\d.]+)\s+([\d.]+)\s*$/);
  if (!match?.[1] || !match[2]) throw new Error(`cannot read openssl speed output:\n${stdout}`);
  return {
    sign_us: Math.round((1e6 / Number(match[1])) * 10) / 10,
    verify_us: Math.round((1e6 / Number(match[2])) * 10) / 10,
  };
}
