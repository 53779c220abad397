import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Logger } from './logger.js';

/** The lowest nice value on Linux: the fallback where the idle policy cannot be set. */
export const BACKGROUND_NICE = 19;
/** libuv starts its pool threads on first use, so the threads are looked at again this often. */
export const RESCAN_MS = 10_000;
/**
 * Sets each thread named as an argument to SCHED_IDLE with util-linux's chrt
 * and prints the ones it set; exits 127 without chrt. One shell for all the
 * threads of a scan: every spawn forks the whole daemon, which blocks its
 * loop for several ms.
 */
const SET_IDLE_SCRIPT =
  'command -v chrt >/dev/null 2>&1 || exit 127; for t do chrt --idle --pid 0 "$t" 2>/dev/null && echo "$t"; done; exit 0';

export interface BackgroundThreads {
  /** Threads set to BACKGROUND_NICE so far. */
  readonly lowered: number;
  /** Threads set to SCHED_IDLE so far. */
  readonly idle: number;
  /** Resolves once every policy change started so far has ended (for tests). */
  settled(): Promise<void>;
  stop(): void;
}

/**
 * Runs every thread of this process except the main one (V8's optimising
 * compiler and garbage-collector helpers, libuv's pool, a module loader's
 * thread) under Linux's SCHED_IDLE policy, so that on a board with few cores
 * their bursts of several ms run only on a core nothing else wants, instead
 * of delaying the event loop, the broker or the hub on the path of a press.
 * A thread of any normal process that wakes up preempts a SCHED_IDLE thread
 * at once, and the kernel counts a core running only such threads as idle
 * when it places a woken thread. The main thread, which rings the chime and
 * signs the events, keeps its policy and priority.
 *
 * Each thread is first set to nice 19 (`setpriority(PRIO_PROCESS, tid)`),
 * then to SCHED_IDLE with util-linux's `chrt --idle` (Node has no binding
 * for sched_setscheduler), all of a scan's threads from one shell. Neither needs a privilege, and neither is a
 * realtime policy (systemd's RestrictRealtime= allows both). Where chrt is
 * missing the threads stay at nice 19, which is weaker: a compiler burst at
 * nice 19 can still hold a core that a woken thread was placed on for ms.
 * Elsewhere than Linux (no /proc/self/task) this does nothing.
 */
export function lowerBackgroundThreads(logger: Logger, rescanMs = RESCAN_MS): BackgroundThreads {
  const done = new Set<number>();
  const idle = new Set<number>();
  const pending = new Set<Promise<void>>();
  let warned = false;
  let chrtMissing = false;
  const warnOnce = (fields: Record<string, unknown>, message: string): void => {
    if (warned) return;
    warned = true;
    logger.warn(fields, message);
  };
  const setIdle = (tids: number[]): void => {
    const change = new Promise<void>((resolve) => {
      execFile('/bin/sh', ['-c', SET_IDLE_SCRIPT, 'sh', ...tids.map(String)], (err, stdout) => {
        if (err && (err.code === 127 || err.code === 'ENOENT')) {
          chrtMissing = true;
          warnOnce({ command: 'chrt' }, 'chrt not found: background threads run at nice 19 only');
        } else if (err) {
          warnOnce({ err: String(err) }, 'could not set background threads to SCHED_IDLE');
        }
        const set = new Set(stdout.split('\n').filter(Boolean).map(Number));
        for (const tid of tids) {
          if (set.has(tid)) idle.add(tid);
          // A thread that ended meanwhile is no failure; anything else is worth one line.
          else if (!chrtMissing && existsSync(`/proc/self/task/${tid}`)) {
            warnOnce({ tid }, 'could not set a background thread to SCHED_IDLE');
          }
        }
        resolve();
      });
    });
    pending.add(change);
    void change.then(() => pending.delete(change));
  };
  const scan = (): void => {
    let tids: string[];
    try {
      tids = readdirSync('/proc/self/task');
    } catch {
      return; // not Linux, or no procfs: nothing to do
    }
    const fresh: number[] = [];
    for (const name of tids) {
      const tid = Number(name);
      if (!Number.isInteger(tid) || tid === process.pid || done.has(tid)) continue;
      try {
        setPriority(tid, BACKGROUND_NICE);
        done.add(tid);
      } catch (err) {
        // ESRCH: the thread ended meanwhile. Anything else is worth one line.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') {
          warnOnce({ err: String(err), tid }, 'could not lower the priority of a background thread');
        }
        continue;
      }
      fresh.push(tid);
    }
    if (fresh.length > 0 && !chrtMissing) setIdle(fresh);
  };
  scan();
  const timer = setInterval(scan, rescanMs);
  timer.unref();
  return {
    get lowered() {
      return done.size;
    },
    get idle() {
      return idle.size;
    },
    async settled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    stop() {
      clearInterval(timer);
    },
  };
}
