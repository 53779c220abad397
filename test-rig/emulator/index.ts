import { type Logger, silentLogger } from '../../common/logger.js';
import { createPtyPair } from '../pty-pair.js';
import { openSerialTransport } from '../serial-transport.js';
import { BoardWires, type ConnectWires } from './board-wires.js';
import type { LinkFaults } from './link-shaper.js';
import type { PowerSwitch } from './power-switch.js';
import { RigEmulator } from './rig-emulator.js';

export { BoardWires } from './board-wires.js';
export type { LinkFaults } from './link-shaper.js';
export { DaemonPowerSwitch, type PowerSwitch } from './power-switch.js';
export { RigEmulator } from './rig-emulator.js';
export { type SimBoard, startSimBoard } from './sim-board.js';

export interface EmulatorOptions {
  /** The sim daemon's wire socket. */
  socketPath: string;
  power: PowerSwitch;
  powered?: boolean;
  faults?: LinkFaults;
  logger?: Logger;
  connect?: ConnectWires;
}

export interface RunningEmulator {
  /** Open this as the rig's serial port (`--port`). */
  hostPath: string;
  emulator: RigEmulator;
  /** The socat process behind the pty pair. */
  socatPid: number;
  /** Resolves once the powered board's wire socket is connected: the rig's actions reach the board from then on. */
  boardConnected(timeoutMs: number): Promise<void>;
  /** Closes the emulator's port and kills its socat (by pid). Does not touch the power. */
  stop(): Promise<void>;
}

/** A rig emulator on one end of a fresh socat pty pair; the host opens `hostPath`. */
export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const logger = options.logger ?? silentLogger();
  const pty = await createPtyPair();
  try {
    const transport = await openSerialTransport({ path: pty.paths[1] });
    const board = new BoardWires(options.socketPath, logger, options.connect);
    const emulator = new RigEmulator({
      transport,
      board,
      power: options.power,
      ...(options.powered === undefined ? {} : { powered: options.powered }),
      ...(options.faults ? { faults: options.faults } : {}),
      logger,
    });
    return {
      hostPath: pty.paths[0],
      emulator,
      socatPid: pty.pid,
      boardConnected: (timeoutMs) => board.waitConnected(timeoutMs),
      async stop() {
        await emulator.close().catch(() => undefined);
        await pty.kill();
      },
    };
  } catch (err) {
    await pty.kill();
    throw err;
  }
}
