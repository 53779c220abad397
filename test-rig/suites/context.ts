import type { VerifiedEvent } from '../../hub/event-watcher.js';
import type { RigDriver } from '../protocol/driver.js';
import type { ChimeEdge } from '../protocol/driver-support.js';
import type { HubWatch } from './hub-watch.js';

/** What every check gets: the driver, chime edges seen so far, and the hub when there is one. */
export interface SuiteContext {
  driver: RigDriver;
  /** Every CHIME_EDGE since watching started (rig timestamps). */
  chime: ChimeEdge[];
  hub?: HubWatch;
  deviceId?: string;
  /** Latency sample size for the full suite. */
  latencyPresses: number;
}

export class CheckFailure extends Error {}
export class CheckSkipped extends Error {}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves with the first chime edge after index `from` matching `level`, or fails after `timeoutMs`. */
export async function waitForEdge(
  ctx: SuiteContext,
  from: number,
  level: 0 | 1,
  timeoutMs: number,
  what: string,
): Promise<ChimeEdge> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const edge = ctx.chime.slice(from).find((e) => e.level === level);
    if (edge) return edge;
    if (performance.now() > deadline)
      throw new CheckFailure(`no chime edge to ${level} within ${timeoutMs} ms ${what}`);
    await sleep(5);
  }
}

export function needHub(ctx: SuiteContext): HubWatch {
  if (!ctx.hub) throw new CheckSkipped('no hub: give --broker, --device-id and --device-key (or --emulate)');
  return ctx.hub;
}

export const isKind =
  (kind: string, sinceNs: bigint) =>
  (e: VerifiedEvent): boolean =>
    e.event.kind === kind && e.receivedAtNs >= sinceNs;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}
