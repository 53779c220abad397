export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  durationMs: number;
  /** Why it failed or was skipped, or what was measured. */
  detail: string;
  data?: Record<string, unknown>;
}

export interface SuiteReport {
  suite: string;
  port: string;
  rig?: { firmware: string; serial: string; version: number };
  startedAt: string;
  durationMs: number;
  passed: number;
  failed: number;
  skipped: number;
  ok: boolean;
  checks: CheckResult[];
  /** Frames the driver rejected during the run, by kind. */
  linkErrors?: Record<string, number>;
}

export function summarize(base: Omit<SuiteReport, 'passed' | 'failed' | 'skipped' | 'ok'>): SuiteReport {
  const count = (s: CheckStatus) => base.checks.filter((c) => c.status === s).length;
  const failed = count('fail');
  return { ...base, passed: count('pass'), failed, skipped: count('skip'), ok: failed === 0 };
}

const MARK: Record<CheckStatus, string> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' };

/** The human-readable report. */
export function formatReport(r: SuiteReport): string {
  const lines = [`doorbell-rig: suite ${r.suite} on ${r.port}`];
  if (r.rig) lines.push(`rig: ${r.rig.firmware}, serial ${r.rig.serial}, protocol v${r.rig.version}`);
  for (const c of r.checks) {
    lines.push(
      `  ${MARK[c.status]}  ${c.name} (${Math.round(c.durationMs)} ms)${c.detail ? `: ${c.detail}` : ''}`,
    );
  }
  const errors = Object.entries(r.linkErrors ?? {}).filter(([, n]) => n > 0);
  if (errors.length > 0) lines.push(`link errors: ${errors.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  lines.push(
    `${r.ok ? 'OK' : 'FAILED'}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped in ${(r.durationMs / 1000).toFixed(1)} s`,
  );
  return `${lines.join('\n')}\n`;
}
