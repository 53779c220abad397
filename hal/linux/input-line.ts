import type { Logger } from '../../common/logger.js';
import { halErrorFromErrno } from '../errno.js';
import { HalError } from '../errors.js';
import type { EdgeListener, InputLine, Level } from '../lines.js';
import type { GpioDriver, GpioPin } from './gpio-driver.js';

export type Pull = 'up' | 'down' | 'none';

export interface SysfsInputSpec {
  name: string;
  /** The global sysfs GPIO number (see gpio-chip.ts). */
  gpio: number;
  activeLow: boolean;
  /** Documents the wiring only: sysfs cannot set a pull (see the log line and hal/README.md). */
  pull: Pull;
}

/** Throws HalError('unavailable') unless sysfs GPIO can be used here. */
export function assertAccessible(driver: GpioDriver, name: string): void {
  if (!driver.accessible) {
    throw new HalError(
      'unavailable',
      name,
      'sysfs GPIO is not accessible here (/sys/class/gpio or epoll missing)',
    );
  }
}

/**
 * An InputLine on a sysfs GPIO (onoff, edge 'both', active-low inverted by
 * the kernel). Edge timestamps are taken when the epoll callback runs, so
 * they lag the electrical edge by the interrupt and event-loop latency, and
 * fast bounces may be merged (onoff reads the value after the interrupt).
 */
export class SysfsInputLine implements InputLine {
  private readonly listeners = new Set<EdgeListener>();
  private closed = false;

  private constructor(
    readonly name: string,
    private readonly pin: GpioPin,
    private readonly logger: Logger,
  ) {
    pin.watch((err, value) => this.onInterrupt(err, value));
  }

  static open(spec: SysfsInputSpec, deps: { driver: GpioDriver; logger: Logger }): SysfsInputLine {
    assertAccessible(deps.driver, spec.name);
    if (spec.pull !== 'none') {
      deps.logger.info(
        { line: spec.name, pull: spec.pull },
        `sysfs GPIO cannot set a pull-${spec.pull}: it must come from the device tree ` +
          '(e.g. `gpio=17=ip,pu` in config.txt on a Raspberry Pi) or an external resistor',
      );
    }
    let pin: GpioPin;
    try {
      pin = deps.driver.open(spec.gpio, 'in', 'both', { activeLow: spec.activeLow });
    } catch (err) {
      throw halErrorFromErrno(err, spec.name, `opening GPIO ${spec.gpio} as input`);
    }
    return new SysfsInputLine(spec.name, pin, deps.logger);
  }

  read(): Level {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
    try {
      return this.pin.readSync() === 1;
    } catch (err) {
      throw halErrorFromErrno(err, this.name, 'reading');
    }
  }

  watch(listener: EdgeListener): () => void {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    try {
      this.pin.unwatchAll();
      this.pin.unexport();
    } catch (err) {
      this.logger.warn({ err, line: this.name }, 'could not release the GPIO');
    }
  }

  private onInterrupt(err: Error | null | undefined, value: 0 | 1): void {
    const atNs = process.hrtime.bigint();
    if (err) {
      this.logger.warn({ err, line: this.name }, 'GPIO interrupt error');
      return;
    }
    for (const listener of [...this.listeners]) listener(value === 1, atNs);
  }
}
