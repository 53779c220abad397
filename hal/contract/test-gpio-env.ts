import type { GpioLineConfig } from '../config.js';

/**
 * The real lines for hal/contract/linux.test.ts, from DOORBELL_TEST_GPIO, e.g.
 * `button=gpiochip0:17,chime=gpiochip0:27,loopback=1`:
 * - `button`: an input line; `chime`: an output line (`chip:line`, chip as in
 *   the config: sysfs name, character-device name or label);
 * - `loopback=1`: the chime line is wired to the button line (a jumper, or a
 *   1 kΩ resistor to be safe), so the suites can drive the input and observe
 *   the output. Both lines are used active-high; nothing else may be attached.
 */
export interface TestGpio {
  button: GpioLineConfig;
  chime: GpioLineConfig;
  loopback: boolean;
}

export const TEST_GPIO_EXAMPLE = 'button=gpiochip0:17,chime=gpiochip0:27,loopback=1';

function parseLine(key: string, value: string | undefined): GpioLineConfig {
  const at = value?.lastIndexOf(':') ?? -1;
  const chip = value?.slice(0, at) ?? '';
  const line = Number(value?.slice(at + 1));
  if (value === undefined || at <= 0 || !Number.isInteger(line) || line < 0) {
    throw new TypeError(
      `DOORBELL_TEST_GPIO: ${key} must be chip:line (e.g. ${TEST_GPIO_EXAMPLE}), got ${String(value)}`,
    );
  }
  return { chip, line };
}

/** Parses DOORBELL_TEST_GPIO; throws a TypeError naming the bad field. */
export function parseTestGpio(spec: string): TestGpio {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new TypeError(`DOORBELL_TEST_GPIO: expected key=value, got ${JSON.stringify(part)}`);
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const unknown = [...fields.keys()].filter((k) => !['button', 'chime', 'loopback'].includes(k));
  if (unknown.length > 0) throw new TypeError(`DOORBELL_TEST_GPIO: unknown field ${unknown.join(', ')}`);
  return {
    button: parseLine('button', fields.get('button')),
    chime: parseLine('chime', fields.get('chime')),
    loopback: fields.get('loopback') === '1',
  };
}
