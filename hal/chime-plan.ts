import type { Logger } from '../common/logger.js';
import { checkNumber } from './check.js';

export type ChimeMode = 'mechanical' | 'electronic' | 'none';

export interface ChimeStep {
  onMs: number;
  offMs: number;
}

export interface ChimeOptions {
  mode: ChimeMode;
  /** Mechanical: how long the coil is energised per ring. */
  pulseMs: number;
  /** Electronic: the on/off rhythm of one ring. */
  pattern: ChimeStep[];
  /** Hard cap per on-period; itself capped at HARD_MAX_ON_MS whatever is asked. */
  maxOnMs: number;
  /** Minimum off time between two on-periods, within a ring and between rings. */
  minGapMs: number;
}

/** No on-period is ever longer than this, whatever the options say: it protects the coil. */
export const HARD_MAX_ON_MS = 1000;
export const MAX_PATTERN_STEPS = 64;

export const defaultChimeOptions: ChimeOptions = {
  mode: 'mechanical',
  pulseMs: 250,
  pattern: [
    { onMs: 200, offMs: 150 },
    { onMs: 200, offMs: 150 },
    { onMs: 400, offMs: 300 },
  ],
  maxOnMs: HARD_MAX_ON_MS,
  minGapMs: 250,
};

/** What the driver actually plays: limits applied, every step within them. */
export interface ChimePlan {
  readonly steps: ReadonlyArray<ChimeStep>;
  readonly maxOnMs: number;
  readonly minGapMs: number;
}

const msRange = { min: 0, max: 600_000, unit: 'ms' } as const;

/**
 * Checks the options (TypeError naming the field for nonsense such as NaN or
 * negatives) and applies the safety limits, logging each clamp: maxOnMs at
 * most 1000, each on-period at most maxOnMs, each off-period at least minGapMs
 * (so the last one keeps the gap before the next ring).
 */
export function planChime(options: ChimeOptions, logger: Logger): ChimePlan {
  const requestedMaxOn = checkNumber('maxOnMs', options.maxOnMs, { ...msRange, min: 1 });
  const minGapMs = checkNumber('minGapMs', options.minGapMs, msRange);
  const maxOnMs = Math.min(requestedMaxOn, HARD_MAX_ON_MS);
  if (maxOnMs !== requestedMaxOn) {
    logger.warn({ field: 'maxOnMs', requested: requestedMaxOn, clamped: maxOnMs }, 'chime option clamped');
  }
  const clampStep = (field: string, step: ChimeStep): ChimeStep => {
    const onMs = checkNumber(`${field}.onMs`, step?.onMs, { ...msRange, min: 1 });
    const offMs = checkNumber(`${field}.offMs`, step?.offMs, msRange);
    const safe = { onMs: Math.min(onMs, maxOnMs), offMs: Math.max(offMs, minGapMs) };
    if (safe.onMs !== onMs) {
      logger.warn({ field: `${field}.onMs`, requested: onMs, clamped: safe.onMs }, 'chime option clamped');
    }
    return safe;
  };
  switch (options.mode) {
    case 'none':
      return { steps: [], maxOnMs, minGapMs };
    case 'mechanical': {
      const pulseMs = checkNumber('pulseMs', options.pulseMs, { ...msRange, min: 1 });
      const step = clampStep('pulseMs', { onMs: pulseMs, offMs: minGapMs });
      return { steps: [step], maxOnMs, minGapMs };
    }
    case 'electronic': {
      const pattern = options.pattern;
      if (!Array.isArray(pattern) || pattern.length === 0 || pattern.length > MAX_PATTERN_STEPS) {
        throw new TypeError(
          `pattern must hold 1..${MAX_PATTERN_STEPS} steps, got ${String(pattern?.length)}`,
        );
      }
      return { steps: pattern.map((step, i) => clampStep(`pattern[${i}]`, step)), maxOnMs, minGapMs };
    }
    default: {
      const mode: never = options.mode;
      throw new TypeError(`mode must be mechanical, electronic or none, got ${String(mode)}`);
    }
  }
}
