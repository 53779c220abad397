import { constants as fsConstants } from 'node:fs';
import { lstat, mkdir, open, rename, rm, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { syncDirectory } from '../common/durable-file.js';
import {
  type BoardTrust,
  type BootState,
  currentSlot,
  FREE_SPACE_MARGIN_BYTES,
  inactiveSlot,
  pointCurrent,
  readBootState,
  SLOT_MANIFEST_FILE,
  SlotError,
  type SlotName,
  type SlotOptions,
  slotDir,
  slotsDir,
  step,
  writeBootState,
} from './boot-state.js';
import {
  bufferSource,
  checkPolicy,
  HEADER_BYTES,
  MAX_MANIFEST_BYTES,
  type Manifest,
  openFileSource,
  type SignedManifest,
  streamFile,
  type TrustPolicy,
  verifyBundle,
  verifyManifest,
} from './manifest.js';

// Installing a bundle into the inactive slot and verifying a slot (see boot-state.ts for the layout).

export function policyFor(state: BootState, trust: BoardTrust, nowMs: number): TrustPolicy {
  return {
    keys: trust.keys,
    hardware: trust.hardware,
    // Trusted time: a board clock set back cannot revive an expired bundle.
    nowMs: Math.max(nowMs, state.committedCreatedAtMs),
    minSecurityCounter: state.committedCounter,
    allowDevelopment: trust.allowDevelopment,
  };
}

/** Free bytes for an unprivileged writer on the file system holding `path` (or its nearest existing parent). */
export async function freeBytes(path: string): Promise<number> {
  let p = path;
  for (;;) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch (err) {
      const parent = dirname(p);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === p) throw err;
      p = parent;
    }
  }
}

export interface InstallResult {
  slot: SlotName;
  manifest: Manifest;
  keyId: string;
}

/**
 * Verifies the bundle completely (signature, hardware, expiry, development
 * flag, security counter, every hash) and checks free space before writing
 * anything; then writes the inactive slot into a temporary directory (hashes
 * checked again while copying), fsyncs it and renames it into place. Does not
 * switch: call `switchToTrial` next.
 */
export async function installToInactiveSlot(
  root: string,
  bundlePath: string,
  options: SlotOptions,
): Promise<InstallResult> {
  const nowMs = (options.nowMs ?? Date.now)();
  const state = await readBootState(root);
  const policy = policyFor(state, options.trust, nowMs);
  const src = await openFileSource(bundlePath);
  try {
    const signed = await verifyBundle(src, policy, (d, t) => options.onProgress?.('verify', d, t));
    const total = signed.manifest.files.reduce((n, f) => n + f.size, 0);
    const need = total + signed.headerAndManifest.length + FREE_SPACE_MARGIN_BYTES;
    const free = await freeBytes(root);
    if (free < need) {
      throw new SlotError(
        'no-space',
        `the target has ${free} bytes free; this bundle needs ${need} (including a ${FREE_SPACE_MARGIN_BYTES}-byte margin)`,
      );
    }
    const slot = inactiveSlot(state);
    // --- nothing was written before this line ---
    step(options, 'mkdir slots');
    await mkdir(slotsDir(root), { recursive: true });
    if (state.trial === slot) {
      await writeBootState(root, { ...state, trial: null, trialAttempts: 0 }, options);
    }
    if ((await currentSlot(root)) === slot && state.committed) {
      await pointCurrent(root, state.committed, options);
    }
    await writeSlot(root, slot, src, signed, options, total);
    return { slot, manifest: signed.manifest, keyId: signed.keyId };
  } finally {
    await src.close();
  }
}

export async function writeSlot(
  root: string,
  slot: SlotName,
  src: Awaited<ReturnType<typeof openFileSource>>,
  signed: SignedManifest,
  options: SlotOptions,
  total: number,
): Promise<void> {
  const tmp = join(slotsDir(root), `.tmp-${slot}`);
  const old = join(slotsDir(root), `.old-${slot}`);
  step(options, 'clear temp slot');
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { mode: 0o755 });
  const dirs = new Set<string>([tmp]);
  let done = 0;
  for (const [i, f] of signed.manifest.files.entries()) {
    const path = join(tmp, f.path);
    const dir = dirname(path);
    if (!dirs.has(dir)) {
      step(options, `mkdir ${f.path}`);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      for (let d = dir; d.length > tmp.length; d = dirname(d)) dirs.add(d);
    }
    step(options, `create ${f.path}`);
    const handle = await open(
      path,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
      f.executable ? 0o755 : 0o644,
    );
    try {
      await streamFile(src, f, signed.offsets[i] ?? 0, async (chunk) => {
        step(options, `write ${f.path}`);
        await handle.write(chunk);
        done += chunk.length;
        options.onProgress?.('write', done, total);
      });
      step(options, `fsync ${f.path}`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  step(options, 'write manifest');
  const manifestHandle = await open(join(tmp, SLOT_MANIFEST_FILE), 'wx', 0o644);
  try {
    await manifestHandle.writeFile(signed.headerAndManifest);
    await manifestHandle.sync();
  } finally {
    await manifestHandle.close();
  }
  for (const d of [...dirs].sort((x, y) => y.length - x.length)) {
    step(options, 'fsync dirs');
    await syncDirectory(d);
  }
  if (await exists(slotDir(root, slot))) {
    step(options, 'move old slot aside');
    await rm(old, { recursive: true, force: true });
    await rename(slotDir(root, slot), old);
  }
  step(options, 'rename slot into place');
  await rename(tmp, slotDir(root, slot));
  step(options, 'fsync slots dir');
  await syncDirectory(slotsDir(root));
  step(options, 'remove old slot');
  await rm(old, { recursive: true, force: true });
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Re-verifies an installed slot against its stored, signed manifest: the
 * signature, the hardware string, a security counter at least
 * `minSecurityCounter`, and every file's size and SHA-256. Expiry is not
 * checked: a bundle that was valid when installed keeps booting.
 * Throws BundleError or SlotError('slot-invalid').
 */
export async function verifySlot(
  root: string,
  slot: SlotName,
  trust: BoardTrust,
  minSecurityCounter: number,
): Promise<Manifest> {
  const dir = slotDir(root, slot);
  let stored: Buffer;
  try {
    const handle = await open(join(dir, SLOT_MANIFEST_FILE), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const { size } = await handle.stat();
      if (size > HEADER_BYTES + MAX_MANIFEST_BYTES)
        throw new SlotError('slot-invalid', 'stored manifest too big');
      stored = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof SlotError) throw err;
    throw new SlotError('slot-invalid', `slot ${slot} has no readable manifest`, { cause: err });
  }
  const policy: TrustPolicy = {
    keys: trust.keys,
    hardware: trust.hardware,
    nowMs: 0,
    minSecurityCounter,
    allowDevelopment: true,
  };
  const signed = await verifyManifest(bufferSource(stored), policy, { headerOnly: true });
  checkPolicy(signed.manifest, policy);
  for (const f of signed.manifest.files) {
    const path = join(dir, f.path);
    let src: Awaited<ReturnType<typeof openFileSource>>;
    try {
      const st = await lstat(path);
      if (!st.isFile() || st.size !== f.size)
        throw new Error(`${f.path}: not a regular file of ${f.size} bytes`);
      src = await openFileSource(path);
    } catch (err) {
      throw new SlotError('slot-invalid', `slot ${slot}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await streamFile(src, f, 0);
    } finally {
      await src.close();
    }
  }
  return signed.manifest;
}
