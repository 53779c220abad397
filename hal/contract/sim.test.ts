import { test } from 'node:test';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/logger.js';
import { DebouncedButton } from '../button.js';
import { ChimeDriver } from '../chime.js';
import { SimWires } from '../sim/sim-wires.js';
import { runButtonContract } from './button.contract.js';
import { runChimeContract } from './chime.contract.js';
import { runLineContract } from './input-output-line.contract.js';

const deps = { clock: systemClock, logger: silentLogger() };

test('sim backend: line contract', (t) =>
  runLineContract(t, async () => {
    const wires = new SimWires();
    return {
      input: wires.buttonLine,
      output: wires.chimeLine,
      driveInput: (level) => wires.buttonLine.set(level),
      close: () => wires.close(),
    };
  }));

test('sim backend: button contract', (t) =>
  runButtonContract(t, async (options) => {
    const wires = new SimWires();
    const button = new DebouncedButton(wires.buttonLine, options, deps);
    return {
      button,
      wire: wires,
      close: async () => {
        await button.close();
        await wires.close();
      },
    };
  }));

test('sim backend: chime contract', (t) =>
  runChimeContract(t, async (options) => {
    const wires = new SimWires();
    const chime = new ChimeDriver(wires.chimeLine, options, deps);
    return {
      chime,
      lineLevel: () => wires.chimeLine.read(),
      observe: (listener) => wires.onChime(listener),
      close: async () => {
        await chime.close();
        await wires.close();
      },
    };
  }));
