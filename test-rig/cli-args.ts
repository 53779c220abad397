import { CliUsageError } from '../common/cli-args.js';

/** Usage errors: the CLI prints the message (not the help) and exits 2. */
export class UsageError extends CliUsageError {
  constructor(message: string) {
    super('doorbell-rig', message);
  }
}

export const COMMANDS = ['list', 'press', 'power', 'emulate', 'run'] as const;

export const USAGE = `usage: doorbell-rig <command> [options]

commands:
  list                          serial ports; the rig's USB ids by --vid/--pid (hex)
  press --port PATH --ms N      press the button for N ms (1..60000)
  power --port PATH on|off      switch the board's power
  emulate                       run a broker, a sim doorbell and the rig emulator; prints the port
  run (--port PATH | --emulate) [--suite smoke|full] [--json FILE]

options:
  --vid HEX --pid HEX           USB vendor / product id of the rig (list; default 2e8a / 000a)
  --broker URL                  an existing broker (emulate, run); a hub watches it during run
  --device-id ID --device-key KEY
                                the board's id and public key (ed25519:...) for hub checks with --port
  --latency-ms N --jitter-ms N  emulated link latency and jitter
  --drop-rate F --corrupt-rate F --delay-rate F --delay-ms N --seed N
                                emulated link faults (fractions 0..1, seeded)
  --presses N                   press-to-chime samples in the full suite (default 10)
  --log-level LEVEL             driver/emulator logs on stderr (default error)
  -h, --help                    this help
  -V, --version                 print the version`;

export function intFlag(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer in ${min}..${max}, got '${value}'`);
  }
  return n;
}

export function fractionFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new UsageError(`--${name} must be a fraction in 0..1, got '${value}'`);
  }
  return n;
}

export function hexFlag(name: string, value: string | undefined, fallback: string): string {
  const v = (value ?? fallback).toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{4}$/.test(v)) throw new UsageError(`--${name} must be 4 hex digits, got '${value}'`);
  return v;
}

export function required(name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
}
