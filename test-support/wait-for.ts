import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits until `condition` holds, checking every `intervalMs`, or fails after
 * `timeoutMs` naming `what`. For states with no event to wait on (a file
 * appearing, a GPIO level read back, a process gone); where there is an
 * event, wait on the event.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 3000,
  intervalMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Lets real time pass, for "nothing happens" checks only (a hardware line that must stay still). */
export const settle = (ms: number): Promise<void> => sleep(ms);
