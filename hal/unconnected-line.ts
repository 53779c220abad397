import { HalError } from './errors.js';
import type { Level, OutputLine } from './lines.js';

/**
 * An output with nothing attached, for a device configured as absent (chime
 * mode 'none' on linux). It remembers the level so the contract holds.
 */
export class UnconnectedOutputLine implements OutputLine {
  private level: Level = false;
  private closed = false;

  constructor(readonly name: string) {}

  write(level: Level): void {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
    this.level = level;
  }

  read(): Level {
    if (this.closed) throw new HalError('closed', this.name, 'line is closed');
    return this.level;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
