import { HalError } from '../hal/errors.js';
import { connectWires, type WireClient } from '../hal/sim/wire-client.js';

/** What `doorbell sim` can do to the simulated board of a running `doorbell run --hal sim`. */
export const SIM_ACTIONS = ['press', 'hold', 'bounce', 'state'] as const;
export type SimAction = (typeof SIM_ACTIONS)[number];

export interface SimRequest {
  action: SimAction;
  /** press and hold: how long the button stays down. */
  ms?: number;
  /** bounce: how many edges, and how far apart. */
  edges?: number;
  spacingMs?: number;
}

/** Defaults a person at the keyboard means: a short press, the 5 s hold that opens pairing, a bouncy contact. */
const DEFAULT_PRESS_MS = 100;
const DEFAULT_HOLD_MS = 6_000; // comfortably past the 5 s hold that opens pairing
const DEFAULT_EDGES = 6;
const DEFAULT_SPACING_MS = 2;

export class SimNotRunningError extends Error {}

/**
 * Connects to the sim board's wire socket, performs one action and returns the
 * line to print. The socket belongs to a running daemon: without one, the
 * error says how to start it.
 */
export async function runSimAction(socketPath: string, request: SimRequest): Promise<string> {
  let wires: WireClient;
  try {
    wires = await connectWires(socketPath);
  } catch (err) {
    if (err instanceof HalError) {
      throw new SimNotRunningError(
        `no simulated doorbell answers on ${socketPath} (${err.message.split(': ').at(-1)}); ` +
          'start one with `npm run doorbell -- run --hal sim` and the same --state-dir or --config',
      );
    }
    throw err;
  }
  try {
    switch (request.action) {
      case 'press': {
        const ms = request.ms ?? DEFAULT_PRESS_MS;
        await wires.press(ms);
        return `pressed the button for ${ms} ms`;
      }
      case 'hold': {
        const ms = request.ms ?? DEFAULT_HOLD_MS;
        await wires.hold(ms);
        return `held the button for ${ms} ms`;
      }
      case 'bounce': {
        const edges = request.edges ?? DEFAULT_EDGES;
        const spacing = request.spacingMs ?? DEFAULT_SPACING_MS;
        await wires.bounce(edges, spacing);
        return `bounced the button contact: ${edges} edges ${spacing} ms apart`;
      }
      case 'state': {
        const s = await wires.state();
        const level = (on: boolean): string => (on ? '1' : '0');
        return `line levels: button ${level(s.button)}, chime ${level(s.chime)}, led ${level(s.led)}`;
      }
    }
  } finally {
    await wires.close();
  }
}
