import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RigDriver } from '../protocol/driver.js';
import type { Check } from './checks.js';
import { CheckFailure, type SuiteContext } from './context.js';
import { LINK_RETRIES, linkErrorReport, runWithRetries } from './runner.js';

/** A driver stand-in with only the link counters the retry policy reads. */
function counters() {
  const linkErrors: Record<string, number> = { 'bad-crc': 0, 'bad-cobs': 0 };
  const rigLinkErrors: Record<string, number> = {};
  const driver = { linkErrors, rigLinkErrors } as unknown as RigDriver;
  return { driver, linkErrors, rigLinkErrors };
}

const ctx = (driver: RigDriver): SuiteContext => ({ driver, chime: [], latencyPresses: 1 });

/** A check that fails `failures` times (running `during` each time), then passes. */
function flaky(failures: number, during: () => void): Check & { runs: number } {
  const check = {
    name: 'flaky',
    runs: 0,
    async run() {
      check.runs++;
      if (check.runs <= failures) {
        during();
        throw new CheckFailure(`lost #${check.runs}`);
      }
      return { detail: 'fine' };
    },
  };
  return check;
}

test('a check that fails on a clean link fails at once: no retry hides a real fault', async () => {
  const { driver } = counters();
  const check = flaky(1, () => undefined);
  const result = await runWithRetries(check, ctx(driver), driver);
  assert.equal(check.runs, 1);
  assert.equal(result.status, 'fail');
  assert.equal(result.detail, 'lost #1');
});

test('a check that fails while frames were rejected (either side) runs again, and its pass says so', async () => {
  const { driver, linkErrors, rigLinkErrors } = counters();
  let n = 0;
  const check = flaky(2, () => {
    n++;
    if (n === 1) linkErrors['bad-crc'] = (linkErrors['bad-crc'] ?? 0) + 1;
    else rigLinkErrors['bad-crc'] = 1;
  });
  const result = await runWithRetries(check, ctx(driver), driver);
  assert.equal(check.runs, 3);
  assert.equal(result.status, 'pass');
  assert.match(
    result.detail,
    /^fine \[after 2 attempt\(s\) lost to link errors \(lost #1: 1 frame\(s\) rejected; lost #2/,
  );
  assert.deepEqual(linkErrorReport(driver), { 'bad-crc': 1, 'bad-cobs': 0, 'rig bad-crc': 1 });
});

test(`a check that keeps failing on a noisy link stops after ${LINK_RETRIES} retries and reports every attempt`, async () => {
  const { driver, linkErrors } = counters();
  const check = flaky(100, () => {
    linkErrors['bad-cobs'] = (linkErrors['bad-cobs'] ?? 0) + 1;
  });
  const result = await runWithRetries(check, ctx(driver), driver);
  assert.equal(check.runs, LINK_RETRIES + 1);
  assert.equal(result.status, 'fail');
  assert.match(result.detail, new RegExp(`^lost #${LINK_RETRIES + 1} \\[after ${LINK_RETRIES} attempt`));
});
