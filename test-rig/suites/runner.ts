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
    const result = await runCheck(check, ctx);
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
    linkErrors: { ...options.driver.linkErrors },
  });
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
