import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTestGpio, TEST_GPIO_EXAMPLE } from './test-gpio-env.js';

test('DOORBELL_TEST_GPIO parses chips, lines and loopback', () => {
  assert.deepEqual(parseTestGpio(TEST_GPIO_EXAMPLE), {
    button: { chip: 'gpiochip0', line: 17 },
    chime: { chip: 'gpiochip0', line: 27 },
    loopback: true,
  });
  assert.equal(parseTestGpio('button=pinctrl-rp1:5,chime=pinctrl-rp1:6').loopback, false);
});

test('a bad DOORBELL_TEST_GPIO is a TypeError naming the field', () => {
  assert.throws(() => parseTestGpio('button=gpiochip0,chime=gpiochip0:27'), /button must be chip:line/);
  assert.throws(() => parseTestGpio('button=gpiochip0:1,chime=gpiochip0:x'), /chime/);
  assert.throws(() => parseTestGpio('button=gpiochip0:1,chime=gpiochip0:2,relay=1'), /unknown field relay/);
  assert.throws(() => parseTestGpio('nonsense'), /key=value/);
});
