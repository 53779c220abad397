import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCorrelationId, newCorrelationId } from './correlation.js';
import { parseDeviceTopic, topicsFor, validateDeviceId } from './topics.js';

describe('topics', () => {
  test('topicsFor lays out the four topics of a device', () => {
    assert.deepEqual(topicsFor('front-door'), {
      cmd: 'doorbell/v1/front-door/cmd',
      evt: 'doorbell/v1/front-door/evt',
      status: 'doorbell/v1/front-door/status',
      data: 'doorbell/v1/front-door/data',
    });
  });

  test('parseDeviceTopic inverts topicsFor', () => {
    for (const channel of ['cmd', 'evt', 'status', 'data'] as const) {
      assert.deepEqual(parseDeviceTopic(topicsFor('porch-2')[channel]), { deviceId: 'porch-2', channel });
    }
  });

  test('parseDeviceTopic refuses anything else', () => {
    for (const topic of [
      'doorbell/v1/front-door',
      'doorbell/v1/front-door/cmd/x',
      'doorbell/v2/front-door/cmd',
      'doorbell/v1/Front-Door/cmd',
      'doorbell/v1/+/cmd',
      'doorbell/v1/front-door/log',
      '/doorbell/v1/front-door/cmd',
      '',
    ]) {
      assert.equal(parseDeviceTopic(topic), undefined, topic);
    }
  });

  test('validateDeviceId accepts the documented shape', () => {
    for (const id of ['abc', 'front-door', '0ab', 'a'.repeat(63), 'doorbell-0123abcd']) {
      assert.equal(validateDeviceId(id), id);
    }
  });

  test('validateDeviceId throws a TypeError naming the value', () => {
    for (const id of [
      'ab',
      '-abc',
      'Abc',
      'a#b',
      'a+b',
      'a/b',
      'a b',
      'a_b',
      'a'.repeat(64),
      '',
      42,
      undefined,
    ]) {
      assert.throws(
        () => validateDeviceId(id),
        (err: unknown) => err instanceof TypeError && err.message.includes(JSON.stringify(id) ?? 'undefined'),
        String(id),
      );
    }
    assert.throws(() => topicsFor('a/b'), TypeError);
  });
});

describe('correlation ids', () => {
  test('newCorrelationId is 16 random bytes in hex', () => {
    const a = newCorrelationId();
    assert.match(a, /^[0-9a-f]{32}$/);
    assert.notEqual(a, newCorrelationId());
    assert.ok(isCorrelationId(a));
  });

  test('isCorrelationId bounds length and charset', () => {
    assert.ok(isCorrelationId(''));
    assert.ok(isCorrelationId('x'.repeat(64)));
    assert.ok(!isCorrelationId('x'.repeat(65)));
    assert.ok(!isCorrelationId('a b'));
    assert.ok(!isCorrelationId('a\nb'));
  });
});
