import { type Clock, systemClock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { Backend } from './backend.js';
import { type Button, DebouncedButton } from './button.js';
import { type Chime, ChimeDriver } from './chime.js';
import { type HalConfig, parseHalConfig } from './config.js';
import type { SimWires } from './sim/sim-wires.js';
import { BlinkingStatusLed, type StatusLed } from './status-led.js';

export { type Clock, FakeClock, systemClock, type TimerHandle } from '../common/clock.js';
export type { Backend } from './backend.js';
export {
  type Button,
  type ButtonEvent,
  type ButtonOptions,
  DebouncedButton,
  defaultButtonOptions,
} from './button.js';
export {
  type Chime,
  ChimeDriver,
  type ChimeMode,
  type ChimeOptions,
  type ChimeStep,
  type RingResult,
} from './chime.js';
export { defaultChimeOptions, HARD_MAX_ON_MS } from './chime-plan.js';
export {
  type GpioLineConfig,
  type HalConfig,
  type HalConfigInput,
  halConfigSchema,
  parseHalConfig,
} from './config.js';
export { HalError, type HalErrorKind, isHalError } from './errors.js';
export type { EdgeListener, InputLine, Level, OutputLine } from './lines.js';
export type { SimWires, WireChange, WireListener } from './sim/sim-wires.js';
export { connectWires, type WireClient, type WireClientOptions } from './sim/wire-client.js';
export type { WireEvent, WireReply, WireRequest, WireState } from './sim/wire-protocol.js';
export { startWireServer, type WireServer } from './sim/wire-server.js';
export { BlinkingStatusLed, type LedState, type StatusLed } from './status-led.js';

/** The board's devices, built on one backend. */
export interface Hal {
  readonly button: Button;
  readonly chime: Chime;
  readonly led: StatusLed;
  /** Present with the sim backend: the virtual wires tests and the rig emulator drive. */
  readonly sim?: SimWires;
  /** Forces the chime and LED off, releases every line and stops the wire server. Idempotent. */
  close(): Promise<void>;
}

export interface HalDeps {
  logger: Logger;
  clock?: Clock;
  /** Sim only: serve the wires on this Unix socket (overrides `config.sim.socket`). */
  simSocketPath?: string;
}

async function openBackend(config: HalConfig, deps: HalDeps): Promise<Backend> {
  const logger = deps.logger.child({ module: 'hal', backend: config.backend });
  if (config.backend === 'linux') {
    const { openLinuxBackend } = await import('./linux/linux-backend.js');
    return openLinuxBackend(config, { logger });
  }
  const { openSimBackend } = await import('./sim/sim-backend.js');
  const socketPath = deps.simSocketPath ?? config.sim.socket;
  return openSimBackend(socketPath === undefined ? { logger } : { logger, socketPath });
}

/**
 * Builds the HAL from its config: validates it (HalError 'invalid-config'
 * listing every problem), loads the backend lazily, and builds the shared
 * devices on its lines. Backend errors are HalErrors ('unavailable',
 * 'permission', 'busy', ...).
 */
export async function createHal(config: HalConfig, deps: HalDeps): Promise<Hal> {
  const valid = parseHalConfig(config);
  const clock = deps.clock ?? systemClock;
  const backend = await openBackend(valid, deps);
  const child = (module: string) => ({ clock, logger: deps.logger.child({ module }) });
  let devices: { button: Button; chime: Chime; led: StatusLed };
  try {
    devices = {
      button: new DebouncedButton(backend.buttonLine, valid.button, child('button')),
      chime: new ChimeDriver(backend.chimeLine, valid.chime, child('chime')),
      led: new BlinkingStatusLed(backend.ledLine, child('led')),
    };
  } catch (err) {
    const { buttonLine, chimeLine, ledLine } = backend;
    await Promise.allSettled([buttonLine.close(), chimeLine.close(), ledLine.close()]);
    await backend.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = async () => {
    const results = await Promise.allSettled([
      devices.chime.close(),
      devices.led.close(),
      devices.button.close(),
    ]);
    await backend.close();
    for (const r of results)
      if (r.status === 'rejected') deps.logger.error({ err: r.reason }, 'HAL close failed');
  };
  return {
    ...devices,
    ...(backend.sim === undefined ? {} : { sim: backend.sim }),
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}
