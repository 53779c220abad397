import type { InputLine, OutputLine } from './lines.js';
import type { SimWires } from './sim/sim-wires.js';

/**
 * What a backend provides: raw lines. Devices (debounce, chime
 * safety, blinking) are built on top by createHal, identically for all.
 */
export interface Backend {
  readonly buttonLine: InputLine;
  readonly chimeLine: OutputLine;
  readonly ledLine: OutputLine;
  /** The sim backend's wires, for tests and the rig emulator. */
  readonly sim?: SimWires;
  /** Releases what the backend holds beyond the lines (the wire server). */
  close(): Promise<void>;
}
