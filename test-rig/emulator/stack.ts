import { readFile, writeFile } from 'node:fs/promises';
import { type RunningBroker, startMosquitto } from '../../broker/local-mosquitto.js';
import type { Logger } from '../../common/logger.js';
import type { VerifyKey } from '../../proto/index.js';
import { type RunningEmulator, startEmulator } from './index.js';
import type { LinkFaults } from './link-shaper.js';
import { type SimBoard, startSimBoard } from './sim-board.js';

/** Everything `doorbell-rig emulate` runs: a broker (unless given), a sim daemon, the emulator on a pty. */
export interface EmulatedStack {
  /** The rig's serial port, as the host opens it. */
  hostPath: string;
  brokerUrl: string;
  deviceId: string;
  deviceKey: VerifyKey;
  board: SimBoard;
  emulator: RunningEmulator;
  /** Pids started here (broker is reported by its own stop): socat and each daemon. */
  pids(): { socat: number; daemons: number[] };
  /** Stops the emulator (socat), the daemon (SIGKILL) and the broker it started, each by pid. */
  stop(): Promise<void>;
}

/** How long a powered sim board may take to serve its wire socket (a daemon start, under load). */
const BOARD_UP_TIMEOUT_MS = 30_000;

export async function startEmulatedStack(options: {
  brokerUrl?: string;
  faults?: LinkFaults;
  logger: Logger;
  /** Told every process started here: 'daemon' (each power on) and 'socat'. */
  onSpawn?: (what: 'daemon' | 'socat', pid: number) => void;
  /** Runs the sim board's camera (the full suite's lamp and clip checks need it). */
  camera?: boolean;
  /** Merged into the sim daemon's `hal.button` / `hal.chime` config before the first power on (e.g. short timings for a benchmark). */
  hal?: { button?: Record<string, number>; chime?: Record<string, number> };
}): Promise<EmulatedStack> {
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    let broker: RunningBroker | undefined;
    if (options.brokerUrl === undefined) {
      broker = await startMosquitto();
      cleanups.push(() => broker?.stop() ?? Promise.resolve());
    }
    const brokerUrl = options.brokerUrl ?? broker?.url ?? '';
    let emulator: RunningEmulator | undefined;
    const board = await startSimBoard({
      brokerUrl,
      onConsoleLine: (line) => emulator?.emulator.consoleLine(line),
      onSpawn: (pid) => options.onSpawn?.('daemon', pid),
      ...(options.camera ? { camera: true } : {}),
    });
    cleanups.push(() => board.stop());
    if (options.hal) await overrideHal(board.configPath, options.hal);
    await board.power.on();
    const emu = await startEmulator({
      socketPath: board.socketPath,
      power: board.power,
      logger: options.logger,
      ...(options.faults ? { faults: options.faults } : {}),
    });
    emulator = emu;
    options.onSpawn?.('socat', emu.socatPid);
    cleanups.push(() => emu.stop());
    // Ready means the rig's PRESS reaches the daemon: its wire socket is connected.
    await emu.boardConnected(BOARD_UP_TIMEOUT_MS);
    const deviceKey = await board.deviceKey();
    return {
      hostPath: emu.hostPath,
      brokerUrl,
      deviceId: board.deviceId,
      deviceKey,
      board,
      emulator: emu,
      pids: () => ({ socat: emu.socatPid, daemons: [...board.power.pids] }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function overrideHal(
  configPath: string,
  hal: { button?: Record<string, number>; chime?: Record<string, number> },
): Promise<void> {
  const config = JSON.parse(await readFile(configPath, 'utf8')) as {
    hal: { button?: Record<string, unknown>; chime?: Record<string, unknown> };
  };
  config.hal = {
    ...config.hal,
    button: { ...config.hal.button, ...hal.button },
    chime: { ...config.hal.chime, ...hal.chime },
  };
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
}
