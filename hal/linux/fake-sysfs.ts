import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GpioDirection, GpioDriver, GpioPin } from './gpio-driver.js';

export interface FakeChip {
  base: number;
  ngpio: number;
  label: string;
  /** The character-device name, created as `<dir>/device/<charDev>` like the kernel does. */
  charDev?: string;
}

/**
 * Builds a temp dir imitating /sys/class/gpio: `gpiochip<base>/{base,ngpio,label}`.
 * The default mimics a Raspberry Pi 4 on kernel 6.6 (bases offset by 512).
 */
export async function fakeSysfsTree(
  chips: FakeChip[] = [
    { base: 512, ngpio: 58, label: 'pinctrl-bcm2711', charDev: 'gpiochip0' },
    { base: 570, ngpio: 8, label: 'raspberrypi-exp-gpio', charDev: 'gpiochip1' },
  ],
): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'fake-sysfs-gpio-'));
  for (const chip of chips) {
    const dir = join(root, `gpiochip${chip.base}`);
    await mkdir(join(dir, 'device', chip.charDev ?? 'none'), { recursive: true });
    await writeFile(join(dir, 'base'), `${chip.base}\n`);
    await writeFile(join(dir, 'ngpio'), `${chip.ngpio}\n`);
    await writeFile(join(dir, 'label'), `${chip.label}\n`);
  }
  await writeFile(join(root, 'export'), '');
  return root;
}

export interface FakePin extends GpioPin {
  readonly gpio: number;
  readonly direction: GpioDirection;
  readonly activeLow: boolean;
  value: 0 | 1;
  exported: boolean;
  /** Fires the onoff watch callbacks, as an interrupt would. */
  interrupt(value: 0 | 1, err?: Error): void;
}

/**
 * An in-memory GpioDriver recording what was opened; `failOpen` makes open()
 * throw that errno; `loopback` wires output `from` to input `to`, delivering
 * each change as an interrupt on a later tick, as the kernel would.
 */
export function fakeGpioDriver(
  options: { accessible?: boolean; failOpen?: string; loopback?: { from: number; to: number } } = {},
) {
  const pins: FakePin[] = [];
  const driver: GpioDriver = {
    accessible: options.accessible ?? true,
    open(gpio, direction, _edge, { activeLow }) {
      if (options.failOpen)
        throw Object.assign(new Error(`${options.failOpen}: fake`), { code: options.failOpen });
      const watchers: Array<(err: Error | null | undefined, value: 0 | 1) => void> = [];
      const pin: FakePin = {
        gpio,
        direction,
        activeLow,
        value: direction === 'high' ? (activeLow ? 0 : 1) : 0,
        exported: true,
        readSync: () => pin.value,
        writeSync: (value) => {
          if (value === pin.value) return;
          pin.value = value;
          if (options.loopback?.from !== gpio) return;
          const target = pins.findLast((p) => p.gpio === options.loopback?.to && p.exported);
          if (target) setImmediate(() => target.interrupt(value));
        },
        watch: (cb) => watchers.push(cb),
        unwatchAll: () => watchers.splice(0),
        unexport: () => {
          pin.exported = false;
        },
        interrupt: (value, err) => {
          pin.value = value;
          for (const cb of watchers) cb(err, value);
        },
      };
      pins.push(pin);
      return pin;
    },
  };
  return { driver, pins };
}
