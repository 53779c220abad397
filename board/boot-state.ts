import { constants as fsConstants } from 'node:fs';
import { open, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { syncDirectory, writeFileDurably } from '../common/durable-file.js';
import type { VerifyKey } from '../proto/keys.js';

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
export const MAX_BOOT_STATE_BYTES = 4096;

export const slotName = z.enum(['a', 'b']);
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

export const step = (options: SlotOptions, what: string): void => options.onStep?.(what);

export async function writeBootState(root: string, state: BootState, options: SlotOptions): Promise<void> {
  const path = bootStatePath(root);
  await writeFileDurably(path, `${JSON.stringify(bootStateSchema.parse(state))}\n`, 0o644, {
    tmpPath: `${path}.tmp`,
    onStep: (s) => step(options, `boot-state: ${s}`),
  });
}

/** Points `slots/current` at `slot` atomically (a temporary symlink renamed over it). */
export async function pointCurrent(root: string, slot: SlotName, options: SlotOptions): Promise<void> {
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
  await syncDirectory(slotsDir(root));
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

/** The slot an install writes: never the committed one, never the only bootable one. */
export function inactiveSlot(state: BootState): SlotName {
  if (state.committed) return otherSlot(state.committed);
  if (state.trial) return otherSlot(state.trial);
  return 'a';
}
