import type { RigDriver } from '../protocol/driver.js';
import { type Check, SUITES } from './checks.js';
import { CheckSkipped, type SuiteContext } from './context.js';
import type { HubWatch } from './hub-watch.js';
import { type CheckResult, type SuiteReport, summarize } from './report.js';

export type SuiteName = keyof typeof SUITES;
export const SUITE_NAMES = Object.keys(SUITES) as SuiteName[];

export interface RunSuiteOptions {
  suite: SuiteName;
  /** An opened driver (handshake done). */
  driver: RigDriver;
  port: string;
  hub?: HubWatch;
  latencyPresses?: number;
  /** Called after each check, e.g. to print progress. */
  onCheck?: (result: CheckResult) => void;
}

/** Runs every check of a suite in order; a failing check is recorded and the next one still runs. */
export async function runSuite(options: RunSuiteOptions): Promise<SuiteReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const ctx: SuiteContext = {
    driver: options.driver,
    chime: [],
    latencyPresses: options.latencyPresses ?? 10,
    ...(options.hub ? { hub: options.hub } : {}),
  };
  const checks: CheckResult[] = [];
  const unwatch = await options.driver.watchChime((edge) => ctx.chime.push(edge)).catch(() => undefined);
  for (const check of SUITES[options.suite]) {
    const result = await runWithRetries(check, ctx, options.driver);
    checks.push(result);
    options.onCheck?.(result);
  }
  await unwatch?.().catch(() => undefined);
  const id = options.driver.identity;
  return summarize({
    suite: options.suite,
    port: options.port,
    ...(id ? { rig: { firmware: id.firmware, serial: id.serial, version: id.version } } : {}),
    startedAt,
    durationMs: performance.now() - started,
    checks,
    linkErrors: linkErrorReport(options.driver),
  });
}

/** How many times a check is run again when link errors were seen while it failed. */
export const LINK_RETRIES = 4;

/** The report's link errors: the host's by kind, the rig's as `rig <code>`. */
export function linkErrorReport(driver: RigDriver): Record<string, number> {
  const rig = Object.entries(driver.rigLinkErrors).map(([code, n]) => [`rig ${code}`, n] as const);
  return { ...driver.linkErrors, ...Object.fromEntries(rig) };
}

/** Every frame either side rejected so far: a lost request or chime edge shows here. */
function linkTrouble(driver: RigDriver): number {
  const sum = (r: Readonly<Record<string, number>>): number => Object.values(r).reduce((a, b) => a + b, 0);
  return sum(driver.linkErrors) + sum(driver.rigLinkErrors);
}

/**
 * Runs a check; when it fails while frames were lost on the link (counted by
 * the driver on its side and reported by the rig on its side), the lost frame
 * may be the check's request or its chime edge, so the whole check runs again,
 * at most LINK_RETRIES times. The driver itself never repeats an action (a
 * PRESS is not repeated blindly); a check is a self-contained experiment that
 * can be. A failure on a clean link fails at once, and a pass after retries
 * says so in its detail.
 */
export async function runWithRetries(
  check: Check,
  ctx: SuiteContext,
  driver: RigDriver,
): Promise<CheckResult> {
  const failures: string[] = [];
  for (let attempt = 0; ; attempt++) {
    const before = linkTrouble(driver);
    const result = await runCheck(check, ctx);
    const lost = linkTrouble(driver) - before;
    if (result.status !== 'fail' || lost === 0 || attempt === LINK_RETRIES) {
      if (failures.length === 0) return result;
      const history = `after ${failures.length} attempt(s) lost to link errors (${failures.join('; ')})`;
      return { ...result, detail: `${result.detail} [${history}]` };
    }
    failures.push(`${result.detail}: ${lost} frame(s) rejected`);
  }
}

async function runCheck(check: Check, ctx: SuiteContext): Promise<CheckResult> {
  const start = performance.now();
  try {
    const { detail, data } = await check.run(ctx);
    return {
      name: check.name,
      status: 'pass',
      durationMs: performance.now() - start,
      detail,
      ...(data ? { data } : {}),
    };
  } catch (err) {
    const skipped = err instanceof CheckSkipped;
    return {
      name: check.name,
      status: skipped ? 'skip' : 'fail',
      durationMs: performance.now() - start,
      detail: err instanceof Error ? err.message : String(err),
    };
  }
}
