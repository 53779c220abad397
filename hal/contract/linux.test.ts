import { test } from 'node:test';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/logger.js';
import { DebouncedButton } from '../button.js';
import { ChimeDriver } from '../chime.js';
import { resolveGpioNumber } from '../linux/gpio-chip.js';
import { loadOnoffDriver } from '../linux/gpio-driver.js';
import { SysfsInputLine } from '../linux/input-line.js';
import { SysfsOutputLine } from '../linux/output-line.js';
import { playBounce, playNoise, playPress } from '../sim/edge-patterns.js';
import { runButtonContract } from './button.contract.js';
import { runChimeContract } from './chime.contract.js';
import { runLineContract } from './input-output-line.contract.js';
import { parseTestGpio, TEST_GPIO_EXAMPLE } from './test-gpio-env.js';

const spec = process.env.DOORBELL_TEST_GPIO;
const deps = { clock: systemClock, logger: silentLogger() };

test('linux backend (sysfs GPIO) contract on real lines', async (t) => {
  if (!spec) {
    t.skip(`set DOORBELL_TEST_GPIO=${TEST_GPIO_EXAMPLE} to run against real lines`);
    return;
  }
  const env = parseTestGpio(spec);
  if (!env.loopback) {
    t.skip('these suites need loopback=1: wire the chime line to the button line');
    return;
  }
  const driver = await loadOnoffDriver();
  const inputGpio = await resolveGpioNumber(env.button);
  const outputGpio = await resolveGpioNumber(env.chime);
  /** The button line as input and the chime line as output, both active-high, wired together. */
  const openPair = () => {
    const output = SysfsOutputLine.open(
      { name: 'test-chime', gpio: outputGpio, activeLow: false },
      { driver, ...deps },
    );
    const input = SysfsInputLine.open(
      { name: 'test-button', gpio: inputGpio, activeLow: false, pull: 'none' },
      { driver, ...deps },
    );
    const drive = (level: boolean) => output.write(level);
    const close = async () => {
      await input.close();
      await output.close();
    };
    return { input, output, drive, close };
  };

  await t.test('line contract', (t) =>
    runLineContract(t, async () => {
      const { input, output, drive, close } = openPair();
      return { input, output, driveInput: drive, close };
    }),
  );

  await t.test('button contract', (t) =>
    runButtonContract(t, async (options) => {
      const { input, drive, close } = openPair();
      const button = new DebouncedButton(input, options, deps);
      const wire = {
        press: (ms: number) => playPress(drive, ms),
        hold: (ms: number) => playPress(drive, ms),
        bounce: (edges: number, spacingMs: number, settleMs?: number) =>
          playBounce(drive, edges, spacingMs, settleMs),
        noise: (edges: number, spacingMs: number) => playNoise(drive, edges, spacingMs),
      };
      return {
        button,
        wire,
        close: async () => {
          await button.close();
          await close();
        },
      };
    }),
  );

  await t.test('chime contract', (t) =>
    runChimeContract(t, async (options) => {
      const { input, output, close } = openPair();
      const chime = new ChimeDriver(output, options, deps);
      return {
        chime,
        lineLevel: () => output.read(),
        observe: (listener) => input.watch(listener),
        close: async () => {
          await chime.close();
          await close();
        },
      };
    }),
  );
});
