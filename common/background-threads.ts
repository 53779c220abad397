import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Logger } from './logger.js';

/** The lowest scheduling priority on Linux (nice 19). */
export const BACKGROUND_NICE = 19;
/** libuv starts its pool threads on first use, so the threads are looked at again this often. */
export const RESCAN_MS = 10_000;

export interface BackgroundThreads {
  /** Threads set to BACKGROUND_NICE so far. */
  readonly lowered: number;
  stop(): void;
}

/**
 * Runs every thread of this process except the main one (V8's optimising
 * compiler and garbage-collector helpers, libuv's pool, a module loader's
 * thread) at the lowest priority, so that on a board with few cores their
 * bursts of several ms wait for idle time instead of delaying the event
 * loop, the broker or the hub on the path of a press. The main thread, which
 * rings the chime and signs the events, keeps its priority.
 *
 * Linux keeps a nice value per thread, and `setpriority(PRIO_PROCESS, tid)`
 * sets it for one thread; lowering it needs no privilege. Elsewhere (no
 * /proc/self/task) this does nothing.
 */
export function lowerBackgroundThreads(logger: Logger, rescanMs = RESCAN_MS): BackgroundThreads {
  const done = new Set<number>();
  let warned = false;
  const scan = (): void => {
    let tids: string[];
    try {
      tids = readdirSync('/proc/self/task');
    } catch {
      return; // not Linux, or no procfs: nothing to do
    }
    for (const name of tids) {
      const tid = Number(name);
      if (!Number.isInteger(tid) || tid === process.pid || done.has(tid)) continue;
      try {
        setPriority(tid, BACKGROUND_NICE);
        done.add(tid);
      } catch (err) {
        // ESRCH: the thread ended meanwhile. Anything else is worth one line.
        if ((err as NodeJS.ErrnoException).code === 'ESRCH' || warned) continue;
        warned = true;
        logger.warn({ err: String(err), tid }, 'could not lower the priority of a background thread');
      }
    }
  };
  scan();
  const timer = setInterval(scan, rescanMs);
  timer.unref();
  return {
    get lowered() {
      return done.size;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
