import { z } from 'zod';
import { HARD_MAX_ON_MS, MAX_PATTERN_STEPS } from './chime-plan.js';
import { HalError } from './errors.js';

/** A GPIO line: the chip (sysfs `gpiochipN` name, libgpiod name or label) and the line offset on it. */
const gpioLineSchema = z.strictObject({
  chip: z.string().min(1).max(64),
  line: z.int().min(0).max(1023),
});

const ms = (min: number, max: number, fallback: number) => z.number().min(min).max(max).default(fallback);

const buttonSchema = z.strictObject({
  gpio: gpioLineSchema.optional(),
  /** True for the usual switch to ground with a pull-up. */
  activeLow: z.boolean().default(true),
  /** sysfs cannot set pulls: this documents the wiring; see hal/README.md. */
  pull: z.enum(['up', 'down', 'none']).default('up'),
  minPressMs: ms(5, 1000, 30),
  lockoutMs: ms(0, 10_000, 500),
  holdMs: ms(1000, 60_000, 5000),
});

const chimeStepSchema = z.strictObject({ onMs: ms(10, HARD_MAX_ON_MS, 200), offMs: ms(0, 10_000, 150) });

const chimeSchema = z.strictObject({
  mode: z.enum(['mechanical', 'electronic', 'none']).default('mechanical'),
  gpio: gpioLineSchema.optional(),
  activeLow: z.boolean().default(false),
  pulseMs: ms(10, HARD_MAX_ON_MS, 250),
  pattern: z
    .array(chimeStepSchema)
    .min(1)
    .max(MAX_PATTERN_STEPS)
    .default([
      { onMs: 200, offMs: 150 },
      { onMs: 200, offMs: 150 },
      { onMs: 400, offMs: 300 },
    ]),
  /** A hard ceiling: it cannot be raised above 1000 ms, here or in the driver. */
  maxOnMs: ms(50, HARD_MAX_ON_MS, HARD_MAX_ON_MS),
  minGapMs: ms(0, 10_000, 250),
});

const ledSchema = z.strictObject({ gpio: gpioLineSchema.optional(), activeLow: z.boolean().default(false) });

/** The HAL part of the configuration. The type is derived from it, so the two cannot drift. */
export const halConfigSchema = z
  .strictObject({
    backend: z.enum(['sim', 'linux']).default('sim'),
    button: buttonSchema.prefault({}),
    chime: chimeSchema.prefault({}),
    led: ledSchema.prefault({}),
    sim: z.strictObject({ socket: z.string().min(1).max(107).optional() }).prefault({}),
  })
  .superRefine(
    (config, ctx) => {
      // Runs even when other fields failed (see `when`), so parts may be missing.
      if (config.backend !== 'linux') return;
      const needed: Array<[string, boolean]> = [
        ['button', config.button?.gpio === undefined],
        ['chime', config.chime?.mode !== 'none' && config.chime?.gpio === undefined],
        ['led', config.led?.gpio === undefined],
      ];
      for (const [device, missing] of needed) {
        if (missing) {
          ctx.addIssue({
            code: 'custom',
            path: [device, 'gpio'],
            message: `${device}.gpio is required with backend 'linux', e.g. { "chip": "gpiochip0", "line": 17 }`,
          });
        }
      }
    },
    // List these problems together with any others, so all are fixed in one go.
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  );

export type HalConfig = z.infer<typeof halConfigSchema>;
export type HalConfigInput = z.input<typeof halConfigSchema>;
export type GpioLineConfig = z.infer<typeof gpioLineSchema>;

/**
 * Parses the HAL config, listing every problem by path in one
 * HalError('invalid-config') (the process refuses to start while any remain).
 */
export function parseHalConfig(input: unknown): HalConfig {
  const result = halConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
  );
  throw new HalError('invalid-config', 'hal', `invalid HAL config:\n  ${problems.join('\n  ')}`, {
    cause: result.error,
  });
}
