import type { Logger } from '../../common/logger.js';
import { halErrorFromErrno } from '../errno.js';
import { HalError } from '../errors.js';
import type { Level, OutputLine } from '../lines.js';
import type { GpioDriver, GpioPin } from './gpio-driver.js';
import { assertAccessible } from './input-line.js';

export interface SysfsOutputSpec {
  name: string;
  gpio: number;
  activeLow: boolean;
}

/**
 * An OutputLine on a sysfs GPIO (onoff, synchronous writes to the value file).
 *
 * It starts deasserted without a glitch: sysfs `direction` values `low` and
 * `high` set the RAW level, so an active-low line is opened with `high`
 * (`low` would energise an active-low relay for an instant, or for good).
 */
export class SysfsOutputLine implements OutputLine {
  private closed = false;

  private constructor(
    readonly name: string,
    private readonly pin: GpioPin,
    private readonly logger: Logger,
  ) {}

  static open(spec: SysfsOutputSpec, deps: { driver: GpioDriver; logger: Logger }): SysfsOutputLine {
    assertAccessible(deps.driver, spec.name);
    const direction = spec.activeLow ? 'high' : 'low';
    try {
      const pin = deps.driver.open(spec.gpio, direction, 'none', { activeLow: spec.activeLow });
      return new SysfsOutputLine(spec.name, pin, deps.logger);
    } catch (err) {
      throw halErrorFromErrno(err, spec.name, `opening GPIO ${spec.gpio} as output`);
    }
  }

  write(level: Level): void {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
    try {
      this.pin.writeSync(level ? 1 : 0);
    } catch (err) {
      throw halErrorFromErrno(err, this.name, `writing ${level ? 'on' : 'off'}`);
    }
  }

  read(): Level {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
    try {
      return this.pin.readSync() === 1;
    } catch (err) {
      throw halErrorFromErrno(err, this.name, 'reading back');
    }
  }

  /**
   * Unexports the GPIO. Caveat: on unexport the kernel leaves the pin as it
   * was (usually still an output at the last level); write it off first.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.pin.unexport();
    } catch (err) {
      this.logger.warn({ err, line: this.name }, 'could not release the GPIO');
    }
  }
}
