import { test } from 'node:test';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/logger.js';
import { DebouncedButton } from '../button.js';
import { ChimeDriver } from '../chime.js';
import { fakeGpioDriver } from '../linux/fake-sysfs.js';
import { SysfsInputLine } from '../linux/input-line.js';
import { SysfsOutputLine } from '../linux/output-line.js';
import { playBounce, playNoise, playPress } from '../sim/edge-patterns.js';
import { runButtonContract } from './button.contract.js';
import { runChimeContract } from './chime.contract.js';
import { runLineContract } from './input-output-line.contract.js';

/**
 * The linux line classes against an in-memory onoff with a loopback wire and
 * asynchronous interrupts: proves the sysfs code meets the contracts where no
 * GPIO exists. The real kernel is covered by linux.test.ts (DOORBELL_TEST_GPIO).
 */
const deps = { clock: systemClock, logger: silentLogger() };

function openPair() {
  const { driver } = fakeGpioDriver({ loopback: { from: 539, to: 529 } });
  const output = SysfsOutputLine.open({ name: 'out', gpio: 539, activeLow: false }, { driver, ...deps });
  const input = SysfsInputLine.open(
    { name: 'in', gpio: 529, activeLow: false, pull: 'none' },
    { driver, ...deps },
  );
  const drive = (level: boolean) => output.write(level);
  const close = async () => {
    await input.close();
    await output.close();
  };
  return { input, output, drive, close };
}

test('linux lines on a fake onoff: line contract', (t) =>
  runLineContract(t, async () => {
    const { input, output, drive, close } = openPair();
    return { input, output, driveInput: drive, close };
  }));

test('linux lines on a fake onoff: button contract', (t) =>
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
    const closeAll = async () => {
      await button.close();
      await close();
    };
    return { button, wire, close: closeAll };
  }));

test('linux lines on a fake onoff: chime contract', (t) =>
  runChimeContract(t, async (options) => {
    const { input, output, close } = openPair();
    const chime = new ChimeDriver(output, options, deps);
    const closeAll = async () => {
      await chime.close();
      await close();
    };
    return { chime, lineLevel: () => output.read(), observe: (l) => input.watch(l), close: closeAll };
  }));
