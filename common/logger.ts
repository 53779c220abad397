import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Creates the root logger of one executable. Modules take a child of it
 * (`logger.child({ module: 'chime' })`) through their constructor and never
 * reach for a global. Logs go to stderr as JSON lines so that a CLI's own
 * output on stdout stays machine-readable.
 */
export function createLogger(options: { level?: LogLevel; name?: string } = {}): Logger {
  return pino(
    { level: options.level ?? process.env.DOORBELL_LOG_LEVEL ?? 'info', name: options.name, base: undefined },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that discards everything: for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
