import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { classifyBrokerError, describeBrokerProblem } from './broker-errors.js';

test('property: any error shape is classified, never throws, and gives one short line', () => {
  const errorLike = fc.oneof(
    fc.anything(),
    fc.record({
      code: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)),
      message: fc.oneof(fc.string(), fc.anything()),
    }),
    fc.string().map((m) => new Error(m)),
  );
  fc.assert(
    fc.property(errorLike, fc.constantFrom('mqtt://h:1883', 'mqtts://h:8883'), (err, url) => {
      const p = classifyBrokerError(err, url);
      const line = describeBrokerProblem(p);
      assert.ok(!line.includes('\n'), 'one line');
      assert.ok(line.length < 600);
      if (p.cause === 'other') assert.equal(p.permanent, false, 'only known causes stop the retrying');
    }),
    { numRuns: 3000 },
  );
});

test('the causes that retrying cannot fix are permanent; a temporary DNS failure is not', () => {
  const permanent = (code: string | number, url = 'mqtt://h:1') =>
    classifyBrokerError({ code, message: 'x' }, url).permanent;
  for (const code of [
    'ECONNREFUSED',
    'ENOTFOUND',
    'SELF_SIGNED_CERT_IN_CHAIN',
    'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    'ECONNRESET',
    135,
  ])
    assert.equal(permanent(code), true, String(code));
  assert.equal(permanent('EAI_AGAIN'), false);
  assert.equal(permanent('ETIMEDOUT'), false);
  assert.equal(classifyBrokerError({ code: 'ECONNRESET' }, 'mqtts://h:1').cause, 'tls-on-plain');
  assert.equal(classifyBrokerError({ code: 'ECONNRESET' }, 'mqtt://h:1').cause, 'plain-on-tls');
});
