import type { Logger } from '../../common/logger.js';
import type { Backend } from '../backend.js';
import type { GpioLineConfig, HalConfig } from '../config.js';
import { HalError } from '../errors.js';
import type { InputLine, OutputLine } from '../lines.js';
import { UnconnectedOutputLine } from '../unconnected-line.js';
import { resolveGpioNumber, SYSFS_GPIO_ROOT } from './gpio-chip.js';
import { type GpioDriver, loadOnoffDriver } from './gpio-driver.js';
import { SysfsInputLine } from './input-line.js';
import { SysfsOutputLine } from './output-line.js';

export interface LinuxBackendDeps {
  logger: Logger;
  /** Tests point this at a fake tree. */
  sysfsRoot?: string;
  /** Tests inject a fake; by default onoff is imported lazily. */
  driver?: GpioDriver;
}

function required(gpio: GpioLineConfig | undefined, path: string): GpioLineConfig {
  if (gpio === undefined)
    throw new HalError('invalid-config', path, `${path} is required with backend 'linux'`);
  return gpio;
}

/** The linux backend: sysfs GPIO through onoff, line numbers computed from each chip's base. */
export async function openLinuxBackend(config: HalConfig, deps: LinuxBackendDeps): Promise<Backend> {
  const { logger } = deps;
  const root = deps.sysfsRoot ?? SYSFS_GPIO_ROOT;
  const driver = deps.driver ?? (await loadOnoffDriver());
  const gpioName = (g: GpioLineConfig) => `${g.chip}:${g.line}`;
  const opened: Array<InputLine | OutputLine> = [];
  try {
    const buttonGpio = required(config.button.gpio, 'button.gpio');
    const buttonLine = SysfsInputLine.open(
      {
        name: gpioName(buttonGpio),
        gpio: await resolveGpioNumber(buttonGpio, root),
        activeLow: config.button.activeLow,
        pull: config.button.pull,
      },
      { driver, logger },
    );
    opened.push(buttonLine);
    let chimeLine: OutputLine;
    if (config.chime.mode === 'none') {
      chimeLine = new UnconnectedOutputLine('chime (none)');
    } else {
      const chimeGpio = required(config.chime.gpio, 'chime.gpio');
      const gpio = await resolveGpioNumber(chimeGpio, root);
      chimeLine = SysfsOutputLine.open(
        { name: gpioName(chimeGpio), gpio, activeLow: config.chime.activeLow },
        { driver, logger },
      );
    }
    opened.push(chimeLine);
    const ledGpio = required(config.led.gpio, 'led.gpio');
    const ledLine = SysfsOutputLine.open(
      {
        name: gpioName(ledGpio),
        gpio: await resolveGpioNumber(ledGpio, root),
        activeLow: config.led.activeLow,
      },
      { driver, logger },
    );
    opened.push(ledLine);
    return { buttonLine, chimeLine, ledLine, close: async () => {} };
  } catch (err) {
    await Promise.all(opened.map((line) => line.close()));
    throw err;
  }
}
