import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { ClipStore, type ClipStoreOptions, type StoreEvent } from './clip-store.js';
import { type StoreConfigInput, storeConfigSchema } from './config.js';

export function tempDir(t: TestContext, prefix = 'clip-store-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An owner key pair made by the Debian `age-keygen` command: [identity file, public key]. */
export function ageKeygen(dir: string, name: string): { identityFile: string; recipient: string } {
  const identityFile = join(dir, `${name}.txt`);
  execFileSync('age-keygen', ['-o', identityFile], { stdio: 'ignore' });
  const recipient = execFileSync('age-keygen', ['-y', identityFile], { encoding: 'utf8' }).trim();
  return { identityFile, recipient };
}

/** Decrypts with the Debian `age` command; returns its exit status and output. */
export function ageDecrypt(
  identityFile: string,
  file: string,
): { status: number; stdout: Buffer; stderr: string } {
  try {
    const stdout = execFileSync('age', ['-d', '-i', identityFile, file], {
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status?: number; stderr?: Buffer };
    return { status: err.status ?? -1, stdout: Buffer.alloc(0), stderr: err.stderr?.toString() ?? '' };
  }
}

export function writeIdentity(dir: string, name: string, identity: string): string {
  const f = join(dir, `${name}.txt`);
  writeFileSync(f, `${identity}\n`, { mode: 0o600 });
  return f;
}

export async function openStore(
  t: TestContext,
  config: StoreConfigInput,
  extra: Partial<Omit<ClipStoreOptions, 'config'>> = {},
): Promise<{ store: ClipStore; events: StoreEvent[] }> {
  const store = new ClipStore({ config: storeConfigSchema.parse(config), logger: silentLogger(), ...extra });
  const events: StoreEvent[] = [];
  store.onEvent((e) => events.push(e));
  await store.start();
  t.after(() => store.stop());
  return { store, events };
}

/** Deterministic pseudo-random bytes with a recognisable marker in the middle. */
export function clipBytes(n: number, marker = 'PLAINTEXT-MARKER-0123456789'): Uint8Array {
  const out = new Uint8Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  const m = new TextEncoder().encode(marker);
  if (n >= m.length) out.set(m, Math.floor((n - m.length) / 2));
  return out;
}
