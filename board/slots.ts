import { constants as fsConstants } from 'node:fs';
import {
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  statfs,
  symlink,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { VerifyKey } from '../proto/keys.js';
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

/**
 * A/B slots on a board's install root. Independent of the flash CLI: the
 * device-side OTA agent uses the same functions.
 *
 *   <root>/slots/a/, <root>/slots/b/     one bundle each: its files + `.bundle-manifest`
 *   <root>/slots/current -> a            relative symlink, replaced atomically (rename)
 *   <root>/slots/boot-state.json         the truth about which slot boots (written atomically)
 *
 * `current` is derived from the boot state by `selectSlotAtBoot`; it only ever
 * points at a slot that verified. A slot is written only while it is neither
 * committed nor the trial, and `current` never points into it meanwhile.
 */

export type SlotName = 'a' | 'b';
export const SLOT_NAMES: readonly SlotName[] = ['a', 'b'];
export const otherSlot = (s: SlotName): SlotName => (s === 'a' ? 'b' : 'a');

/** Header + manifest exactly as in the bundle, kept in each slot to re-verify it. */
export const SLOT_MANIFEST_FILE = '.bundle-manifest';
export const DEFAULT_MAX_TRIAL_ATTEMPTS = 3;
/**
 * The boot selector program. `commit` copies the committed slot's copy to
 * `<root>/slots/boot-select.js`, which the unit runs: the selector always
 * comes from firmware that passed a health check, never from a trial.
 */
export const BOOT_SELECT_FILE = 'boot-select.js';
export const bootSelectPath = (root: string): string => join(root, 'slots', BOOT_SELECT_FILE);
/** Kept free beyond the slot's size when installing. */
export const FREE_SPACE_MARGIN_BYTES = 4 * 1024 * 1024;
const MAX_BOOT_STATE_BYTES = 4096;

const slotName = z.enum(['a', 'b']);
export const bootStateSchema = z
  .object({
    version: z.literal(1),
    /** The slot that passed its health check, or null before the first commit. */
    committed: slotName.nullable(),
    /** The highest security counter ever committed: nothing lower is installed or booted. */
    committedCounter: z.number().int().min(0),
    /** The committed bundle's creation time: a floor for trusted time (expiry checks). */
    committedCreatedAtMs: z.number().int().min(0),
    /** A slot being tried, not yet committed. */
    trial: slotName.nullable(),
    /** How many times the trial slot was selected at boot. */
    trialAttempts: z.number().int().min(0),
  })
  .strict();
export type BootState = z.infer<typeof bootStateSchema>;

export const INITIAL_BOOT_STATE: BootState = {
  version: 1,
  committed: null,
  committedCounter: 0,
  committedCreatedAtMs: 0,
  trial: null,
  trialAttempts: 0,
};

export type SlotErrorKind = 'corrupt-state' | 'no-space' | 'no-trial' | 'no-bootable-slot' | 'slot-invalid';

export class SlotError extends Error {
  override readonly name = 'SlotError';
  constructor(
    readonly kind: SlotErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${kind}: ${message}`, options);
  }
}

/** What a board trusts: release keys and its own hardware string. */
export interface BoardTrust {
  keys: ReadonlyMap<string, VerifyKey>;
  hardware: string;
  /** Install bundles marked as development builds. */
  allowDevelopment: boolean;
}

export interface SlotOptions {
  trust: BoardTrust;
  nowMs?: () => number;
  /** Called before every write to the disk (tests cut the power here). */
  onStep?: (what: string) => void;
  onProgress?: (phase: 'verify' | 'write', done: number, total: number) => void;
  maxTrialAttempts?: number;
}

export const slotsDir = (root: string): string => join(root, 'slots');
export const slotDir = (root: string, slot: SlotName): string => join(root, 'slots', slot);
export const currentLink = (root: string): string => join(root, 'slots', 'current');
export const bootStatePath = (root: string): string => join(root, 'slots', 'boot-state.json');

/** The boot state; the initial one when the file does not exist. */
export async function readBootState(root: string): Promise<BootState> {
  let text: string;
  try {
    const handle = await open(bootStatePath(root), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const { size } = await handle.stat();
      if (size > MAX_BOOT_STATE_BYTES) throw new SlotError('corrupt-state', `boot state is ${size} bytes`);
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...INITIAL_BOOT_STATE };
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SlotError('corrupt-state', `boot state is not JSON: ${(err as Error).message}`);
  }
  const parsed = bootStateSchema.safeParse(json);
  if (!parsed.success) throw new SlotError('corrupt-state', `boot state is invalid: ${parsed.error.message}`);
  return parsed.data;
}

const step = (options: SlotOptions, what: string): void => options.onStep?.(what);

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeBootState(root: string, state: BootState, options: SlotOptions): Promise<void> {
  const path = bootStatePath(root);
  const tmp = `${path}.tmp`;
  step(options, 'boot-state: write temp');
  const handle = await open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(bootStateSchema.parse(state))}\n`);
    step(options, 'boot-state: fsync temp');
    await handle.sync();
  } finally {
    await handle.close();
  }
  step(options, 'boot-state: rename');
  await rename(tmp, path);
  step(options, 'boot-state: fsync dir');
  await syncDir(dirname(path));
}

/** Points `slots/current` at `slot` atomically (a temporary symlink renamed over it). */
async function pointCurrent(root: string, slot: SlotName, options: SlotOptions): Promise<void> {
  const link = currentLink(root);
  try {
    if ((await readlink(link)) === slot) return;
  } catch {
    // missing or not a link: replace it
  }
  const tmp = `${link}.tmp`;
  step(options, 'current: temp symlink');
  await rm(tmp, { force: true });
  await symlink(slot, tmp);
  step(options, 'current: rename');
  await rename(tmp, link);
  step(options, 'current: fsync dir');
  await syncDir(slotsDir(root));
}

/** The slot `slots/current` points at, if it is a valid pointer. */
export async function currentSlot(root: string): Promise<SlotName | undefined> {
  try {
    const target = await readlink(currentLink(root));
    return target === 'a' || target === 'b' ? target : undefined;
  } catch {
    return undefined;
  }
}

function policyFor(state: BootState, trust: BoardTrust, nowMs: number): TrustPolicy {
  return {
    keys: trust.keys,
    hardware: trust.hardware,
    // Trusted time: a board clock set back cannot revive an expired bundle.
    nowMs: Math.max(nowMs, state.committedCreatedAtMs),
    minSecurityCounter: state.committedCounter,
    allowDevelopment: trust.allowDevelopment,
  };
}

/** The slot an install writes: never the committed one, never the only bootable one. */
export function inactiveSlot(state: BootState): SlotName {
  if (state.committed) return otherSlot(state.committed);
  if (state.trial) return otherSlot(state.trial);
  return 'a';
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

async function writeSlot(
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
    await syncDir(d);
  }
  if (await exists(slotDir(root, slot))) {
    step(options, 'move old slot aside');
    await rm(old, { recursive: true, force: true });
    await rename(slotDir(root, slot), old);
  }
  step(options, 'rename slot into place');
  await rename(tmp, slotDir(root, slot));
  step(options, 'fsync slots dir');
  await syncDir(slotsDir(root));
  step(options, 'remove old slot');
  await rm(old, { recursive: true, force: true });
}

async function exists(path: string): Promise<boolean> {
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

/** Marks an installed slot as the trial for the next boot (after verifying it). */
export async function switchToTrial(root: string, slot: SlotName, options: SlotOptions): Promise<Manifest> {
  const state = await readBootState(root);
  if (state.committed === slot) throw new SlotError('slot-invalid', `slot ${slot} is the committed slot`);
  const manifest = await verifySlot(root, slot, options.trust, state.committedCounter);
  await writeBootState(root, { ...state, trial: slot, trialAttempts: 0 }, options);
  return manifest;
}

/**
 * Commits the trial slot after its health check: it becomes the committed
 * slot and its security counter the floor for every later install and boot.
 */
export async function commit(
  root: string,
  options: SlotOptions,
): Promise<{ slot: SlotName; manifest: Manifest }> {
  const state = await readBootState(root);
  const slot = state.trial;
  if (!slot) throw new SlotError('no-trial', 'there is no trial slot to commit');
  const manifest = await verifySlot(root, slot, options.trust, state.committedCounter);
  await writeBootState(
    root,
    {
      version: 1,
      committed: slot,
      committedCounter: Math.max(state.committedCounter, manifest.securityCounter),
      committedCreatedAtMs: Math.max(state.committedCreatedAtMs, manifest.createdAtMs),
      trial: null,
      trialAttempts: 0,
    },
    options,
  );
  await pointCurrent(root, slot, options);
  await installBootSelector(root, slot, options);
  return { slot, manifest };
}

async function installBootSelector(root: string, slot: SlotName, options: SlotOptions): Promise<void> {
  let program: Buffer;
  try {
    program = await readFile(join(slotDir(root, slot), BOOT_SELECT_FILE));
  } catch {
    return; // a bundle without a selector keeps the previous one
  }
  const path = bootSelectPath(root);
  const tmp = `${path}.tmp`;
  step(options, 'boot selector: write temp');
  const handle = await open(tmp, 'w', 0o755);
  try {
    await handle.writeFile(program);
    await handle.sync();
  } finally {
    await handle.close();
  }
  step(options, 'boot selector: rename');
  await rename(tmp, path);
  await syncDir(slotsDir(root));
}

/** Abandons the trial (a failed health check): the committed slot boots next. */
export async function rollback(root: string, options: SlotOptions): Promise<SlotName | null> {
  const state = await readBootState(root);
  if (state.trial && state.committed) {
    await writeBootState(root, { ...state, trial: null, trialAttempts: 0 }, options);
  }
  if (state.committed) await pointCurrent(root, state.committed, options);
  return state.committed;
}

export interface BootSelection {
  slot: SlotName;
  /** trial: trying a new slot (attempt n); committed; rolled-back: the trial failed; fallback: the committed slot was damaged. */
  mode: 'trial' | 'committed' | 'rolled-back' | 'fallback';
  manifest: Manifest;
  attempt?: number;
  /** Why a trial was abandoned or the committed slot skipped. */
  reason?: string;
}

/**
 * Chooses the slot to boot, before the daemon starts. A trial slot is booted
 * (its attempt counted durably first) while it verifies and has attempts
 * left; otherwise it is abandoned and the committed slot boots. A slot whose
 * security counter is below the committed one is never chosen. Points
 * `slots/current` at the choice. Removes leftovers of interrupted writes.
 */
export async function selectSlotAtBoot(root: string, options: SlotOptions): Promise<BootSelection> {
  const max = options.maxTrialAttempts ?? DEFAULT_MAX_TRIAL_ATTEMPTS;
  await removeLeftovers(root, options);
  let state = await readBootState(root);
  let reason: string | undefined;
  if (state.trial) {
    const trial = state.trial;
    if (state.committed && state.trialAttempts >= max) {
      reason = `trial slot ${trial} did not commit after ${state.trialAttempts} attempts`;
    } else {
      try {
        const manifest = await verifySlot(root, trial, options.trust, state.committedCounter);
        const attempt = state.trialAttempts + 1;
        await writeBootState(root, { ...state, trialAttempts: attempt }, options);
        await pointCurrent(root, trial, options);
        return { slot: trial, mode: 'trial', manifest, attempt };
      } catch (err) {
        reason = `trial slot ${trial} is invalid: ${(err as Error).message}`;
      }
    }
    if (state.committed) {
      state = { ...state, trial: null, trialAttempts: 0 };
      await writeBootState(root, state, options);
    }
  }
  const candidates: SlotName[] = state.committed ? [state.committed, otherSlot(state.committed)] : [];
  for (const [i, slot] of candidates.entries()) {
    try {
      const manifest = await verifySlot(root, slot, options.trust, state.committedCounter);
      await pointCurrent(root, slot, options);
      const mode = i > 0 ? 'fallback' : reason ? 'rolled-back' : 'committed';
      return { slot, mode, manifest, ...(reason ? { reason } : {}) };
    } catch (err) {
      reason = `${reason ? `${reason}; ` : ''}slot ${slot} is invalid: ${(err as Error).message}`;
    }
  }
  throw new SlotError('no-bootable-slot', reason ?? 'nothing was ever installed');
}

async function removeLeftovers(root: string, options: SlotOptions): Promise<void> {
  let names: string[];
  try {
    names = await readdir(slotsDir(root));
  } catch {
    return;
  }
  for (const name of names) {
    if (
      /^\.(tmp|old)-[ab]$/.test(name) ||
      name === 'current.tmp' ||
      name === 'boot-state.json.tmp' ||
      name === 'boot-select.js.tmp'
    ) {
      step(options, `remove leftover ${name}`);
      await rm(join(slotsDir(root), name), { recursive: true, force: true });
    }
  }
}
