import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../common/durable-file.js';
import {
  BOOT_SELECT_FILE,
  bootSelectPath,
  DEFAULT_MAX_TRIAL_ATTEMPTS,
  otherSlot,
  pointCurrent,
  readBootState,
  SlotError,
  type SlotName,
  type SlotOptions,
  slotDir,
  slotsDir,
  step,
  writeBootState,
} from './boot-state.js';
import { verifySlot } from './install.js';
import type { Manifest } from './manifest.js';

// Moving between slots: trial, commit, rollback, and the choice at every boot.

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

export async function installBootSelector(root: string, slot: SlotName, options: SlotOptions): Promise<void> {
  let program: Buffer;
  try {
    program = await readFile(join(slotDir(root, slot), BOOT_SELECT_FILE));
  } catch {
    return; // a bundle without a selector keeps the previous one
  }
  const path = bootSelectPath(root);
  await writeFileDurably(path, program, 0o755, {
    tmpPath: `${path}.tmp`,
    onStep: (s) => step(options, `boot selector: ${s}`),
  });
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

export async function removeLeftovers(root: string, options: SlotOptions): Promise<void> {
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
