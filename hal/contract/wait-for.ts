import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `condition` every 5 ms until it holds, or fails after `timeoutMs`
 * (generous by default: real interrupts on a loaded machine can be slow).
 */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Lets real time pass (for "nothing happens" checks). */
export const settle = (ms: number): Promise<void> => sleep(ms);
