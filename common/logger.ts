import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** `pretty`: one readable line per record; `json`: one JSON object per line; `auto`: pretty on a terminal. */
export type LogFormat = 'pretty' | 'json' | 'auto';

export const LOG_FORMATS: readonly LogFormat[] = ['pretty', 'json', 'auto'];

export class LogFormatError extends Error {}

/** A `--log-format` or `DOORBELL_LOG_FORMAT` value, checked. */
export function parseLogFormat(text: string, source = '--log-format'): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(text)) return text as LogFormat;
  throw new LogFormatError(`${source} must be one of ${LOG_FORMATS.join(', ')}, got '${text.slice(0, 40)}'`);
}

/**
 * The format a logger writes: the option, else DOORBELL_LOG_FORMAT, else auto;
 * auto is pretty when stderr is a terminal and JSON otherwise (journald, pipes, files).
 */
export function resolveLogFormat(
  format: LogFormat | undefined,
  env: NodeJS.ProcessEnv = process.env,
  stderrIsTty = process.stderr.isTTY === true,
): 'pretty' | 'json' {
  const chosen =
    format ??
    (env.DOORBELL_LOG_FORMAT ? parseLogFormat(env.DOORBELL_LOG_FORMAT, 'DOORBELL_LOG_FORMAT') : 'auto');
  if (chosen !== 'auto') return chosen;
  return stderrIsTty ? 'pretty' : 'json';
}

/**
 * Creates the root logger of one executable. Modules take a child of it
 * (`logger.child({ module: 'chime' })`) through their constructor and never
 * reach for a global. Logs go to stderr so that a CLI's own output on stdout
 * stays machine-readable: JSON lines, or on a terminal readable lines
 * (pino-pretty, written synchronously in this thread, no worker).
 */
export function createLogger(options: { level?: LogLevel; name?: string; format?: LogFormat } = {}): Logger {
  const settings = {
    level: options.level ?? process.env.DOORBELL_LOG_LEVEL ?? 'info',
    name: options.name,
    base: undefined,
  };
  if (resolveLogFormat(options.format) === 'pretty') {
    return pino(
      settings,
      pretty({
        destination: 2,
        sync: true,
        colorize: process.stderr.isTTY === true && process.env.NO_COLOR === undefined,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        singleLine: true,
      }),
    );
  }
  return pino(settings, pino.destination({ fd: 2, sync: true }));
}

/** A logger that discards everything: for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
