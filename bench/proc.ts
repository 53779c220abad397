import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * CPU seconds (user + system) of a process from /proc/<pid>/stat; with
 * `reapedChildren`, plus those of its children that have exited and were
 * waited for (the per-clip remux `gst-launch-1.0` processes).
 */
export async function procCpuS(pid: number | 'self', reapedChildren = false): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const own = Number(fields[11]) + Number(fields[12]);
  const children = reapedChildren ? Number(fields[13]) + Number(fields[14]) : 0;
  return (own + children) / CLK_TCK;
}

/** Resident set now (VmRSS) and at its peak (VmHWM) of a process, in MiB. */
export async function procRssMb(pid: number): Promise<{ now: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/**
 * Samples a process's resident set every `everyMs` until stopped: the
 * largest VmRSS seen and its last VmHWM (the kernel's own peak, which a
 * sample cannot miss). Readings end quietly when the process does.
 */
export function sampleRss(pid: number, everyMs = 50): { stop(): Promise<{ maxRss: number; hwm: number }> } {
  let maxRss = 0;
  let hwm = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = await procRssMb(pid);
        // An exited process not yet reaped (a zombie) has no memory lines.
        if (Number.isFinite(r.now)) maxRss = Math.max(maxRss, r.now);
        if (Number.isFinite(r.peak)) hwm = Math.max(hwm, r.peak);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { maxRss, hwm };
    },
  };
}
