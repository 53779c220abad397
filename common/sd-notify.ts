import { execFile } from 'node:child_process';
import { type Clock, systemClock, type TimerHandle } from './clock.js';

/**
 * systemd's readiness and watchdog protocol (sd_notify) for a `Type=notify`
 * unit. Node has no AF_UNIX datagram sockets, so each message is sent by the
 * `systemd-notify` tool; the unit must therefore say `NotifyAccess=all` (the
 * sender is a child, not the main process). Since systemd 246 `systemd-notify`
 * waits (BARRIER=1) until the manager has processed the message, so the
 * message is attributed to the unit even though the sender exits at once.
 *
 * Without `NOTIFY_SOCKET` in the environment (not started by systemd) every
 * call is a no-op.
 */
export interface SdNotifier {
  /** True when started by systemd with a notification socket. */
  readonly enabled: boolean;
  /**
   * Half of `WatchdogSec=` (systemd's recommendation) when the watchdog is on
   * for this process, else undefined.
   */
  readonly watchdogIntervalMs: number | undefined;
  /** READY=1: start-up is complete. */
  ready(status?: string): Promise<void>;
  /** WATCHDOG=1: the daemon is alive. */
  watchdog(): Promise<void>;
  /** STOPPING=1: shutting down. */
  stopping(): Promise<void>;
  /** STATUS=...: a line for `systemctl status`. */
  status(text: string): Promise<void>;
  /** Sends WATCHDOG=1 every `watchdogIntervalMs` (unref'd timer); returns a function that stops it. */
  startWatchdog(isHealthy?: () => boolean): () => void;
}

export interface SdNotifyOptions {
  env?: NodeJS.ProcessEnv;
  /** The `systemd-notify` binary. */
  bin?: string;
  /**
   * Pass `--no-block`: do not wait for the manager to process the message.
   * Only for receivers that are not systemd; with systemd the wait is what
   * attributes the message to the unit.
   */
  noBlock?: boolean;
  /** Receives failures to notify (they never throw). */
  onError?: (err: Error) => void;
  /** Runs the watchdog's pings; default the system clock. */
  clock?: Clock;
}

/** Caps a message: the manager ignores datagrams over 4 KiB anyway. */
const MAX_STATUS_CHARS = 1024;

export function createSdNotifier(options: SdNotifyOptions = {}): SdNotifier {
  const env = options.env ?? process.env;
  const bin = options.bin ?? 'systemd-notify';
  const socket = env.NOTIFY_SOCKET;
  const enabled = typeof socket === 'string' && socket.length > 0;
  const watchdogIntervalMs = watchdogInterval(env);
  const send = (...assignments: string[]): Promise<void> => {
    if (!enabled) return Promise.resolve();
    return new Promise((resolve) => {
      const args = options.noBlock ? ['--no-block', ...assignments] : assignments;
      execFile(bin, args, { env: { ...env, NOTIFY_SOCKET: socket }, timeout: 10_000 }, (err) => {
        if (err) options.onError?.(err);
        resolve();
      });
    });
  };
  return {
    enabled,
    watchdogIntervalMs: enabled ? watchdogIntervalMs : undefined,
    ready: (status) => (status ? send('READY=1', statusLine(status)) : send('READY=1')),
    watchdog: () => send('WATCHDOG=1'),
    stopping: () => send('STOPPING=1'),
    status: (text) => send(statusLine(text)),
    startWatchdog(isHealthy = () => true) {
      if (!enabled || watchdogIntervalMs === undefined) return () => undefined;
      const clock = options.clock ?? systemClock;
      let timer: TimerHandle | undefined;
      const tick = (): void => {
        if (isHealthy()) void send('WATCHDOG=1');
        timer = clock.setTimeout(tick, watchdogIntervalMs, { background: true });
      };
      timer = clock.setTimeout(tick, watchdogIntervalMs, { background: true });
      return () => {
        if (timer) clock.clearTimeout(timer);
        timer = undefined;
      };
    },
  };
}

function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, ' ').slice(0, MAX_STATUS_CHARS)}`;
}

/** Half of WATCHDOG_USEC, if the watchdog is meant for this process (WATCHDOG_PID absent or ours). */
export function watchdogInterval(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}
