import { HalError } from '../errors.js';

/** The part of an onoff `Gpio` the linux lines use; a fake implements it in tests. */
export interface GpioPin {
  readSync(): 0 | 1;
  writeSync(value: 0 | 1): void;
  watch(callback: (err: Error | null | undefined, value: 0 | 1) => void): void;
  unwatchAll(): void;
  unexport(): void;
}

export type GpioDirection = 'in' | 'high' | 'low';

/** Opens sysfs GPIO pins. */
export interface GpioDriver {
  /** False when sysfs GPIO (or epoll) is not usable on this machine. */
  readonly accessible: boolean;
  open(
    gpio: number,
    direction: GpioDirection,
    edge: 'both' | 'none',
    options: { activeLow: boolean },
  ): GpioPin;
}

/** Loads onoff lazily, so the sim path never loads it (nor its native epoll addon). */
export async function loadOnoffDriver(): Promise<GpioDriver> {
  let Gpio: typeof import('onoff').Gpio;
  try {
    ({ Gpio } = await import('onoff'));
  } catch (err) {
    throw new HalError('unavailable', 'onoff', 'cannot load onoff (is its native epoll addon built?)', {
      cause: err,
    });
  }
  return {
    accessible: Gpio.accessible,
    open: (gpio, direction, edge, options) => new Gpio(gpio, direction, edge, options),
  };
}
