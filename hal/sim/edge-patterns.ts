import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import { checkNumber } from '../check.js';
import type { Level } from '../lines.js';

/** Lets a caller (the wire server on close) cut a long action short; the wire is then released. */
export interface PlayOptions {
  signal?: AbortSignal;
}

/** Something that can drive a wire: a SimInputLine's `set`, or a looped-back OutputLine's `write`. */
export type Drive = (level: Level) => void;

export const MAX_MS = 600_000;
export const MAX_EDGES = 10_000;

/** Throws a TypeError naming the field unless `value` is a finite number of ms in 0..600000. */
export function checkMs(field: string, value: unknown): number {
  return checkNumber(field, value, { min: 0, max: MAX_MS, unit: 'ms' });
}

/** Throws a TypeError naming the field unless `value` is an integer in 0..10000. */
export function checkEdges(field: string, value: unknown): number {
  return checkNumber(field, value, { min: 0, max: MAX_EDGES, integer: true });
}

/**
 * Waits `ms` of real time. Under 1 ms, setTimeout cannot help, so it yields
 * to the event loop with setImmediate until hrtime passes the target (this
 * spins a core for that long, which is fine for sub-millisecond spacings).
 */
export async function waitMs(ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  if (ms <= 0) return;
  const target = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  if (ms >= 1) await sleep(ms, undefined, { signal });
  while (process.hrtime.bigint() < target) {
    await yieldToLoop();
    signal?.throwIfAborted();
  }
}

/** Estimated real duration of a bounce or noise action, for reply timeouts. */
export function estimateToggleMs(edges: number, spacingMs: number, settleMs = 0): number {
  return (edges + 1) * spacingMs + settleMs;
}

/** A clean press: asserted for `ms`, then deasserted. */
export async function playPress(
  drive: Drive,
  ms: number,
  options: PlayOptions = {},
  releasedMs = 0,
): Promise<void> {
  checkMs('ms', ms);
  checkMs('releasedMs', releasedMs);
  options.signal?.throwIfAborted();
  drive(true);
  try {
    await waitMs(ms, options.signal);
  } finally {
    drive(false);
  }
  // The finger stays off the button: a press right after this one is a new press, not bounce.
  if (releasedMs > 0) await waitMs(releasedMs, options.signal);
}

/**
 * `edges` toggles starting from deasserted, `spacingMs` apart. Returns the
 * level the wire was left at.
 */
async function toggle(drive: Drive, edges: number, spacingMs: number, signal?: AbortSignal): Promise<Level> {
  let level = false;
  for (let i = 0; i < edges; i++) {
    if (i > 0) await waitMs(spacingMs, signal);
    level = !level;
    drive(level);
  }
  return level;
}

/**
 * Contact bounce: `edges` toggles `spacingMs` apart starting from deasserted;
 * if they leave the wire deasserted, one more edge asserts it (so there are
 * `edges` or `edges + 1` edges). It then stays asserted for `settleMs` and
 * finally deasserts cleanly.
 */
export async function playBounce(
  drive: Drive,
  edges: number,
  spacingMs: number,
  settleMs = 100,
  options: PlayOptions = {},
): Promise<void> {
  checkEdges('edges', edges);
  checkMs('spacingMs', spacingMs);
  checkMs('settleMs', settleMs);
  const { signal } = options;
  try {
    const level = await toggle(drive, edges, spacingMs, signal);
    if (!level) {
      if (edges > 0) await waitMs(spacingMs, signal);
      drive(true);
    }
    await waitMs(settleMs, signal);
  } finally {
    drive(false);
  }
}

/**
 * Chatter: `edges` toggles `spacingMs` apart starting from deasserted, ending
 * deasserted (one extra edge when `edges` is odd).
 */
export async function playNoise(
  drive: Drive,
  edges: number,
  spacingMs: number,
  options: PlayOptions = {},
): Promise<void> {
  checkEdges('edges', edges);
  checkMs('spacingMs', spacingMs);
  try {
    const level = await toggle(drive, edges, spacingMs, options.signal);
    if (level) await waitMs(spacingMs, options.signal);
  } finally {
    drive(false);
  }
}
