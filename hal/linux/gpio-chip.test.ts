import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { HalError } from '../errors.js';
import { fakeSysfsTree } from './fake-sysfs.js';
import { findSysfsChip, listSysfsChips, resolveGpioNumber } from './gpio-chip.js';

let root: string;
before(async () => {
  root = await fakeSysfsTree();
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const isHal = (kind: string, pattern: RegExp) => (err: unknown) =>
  err instanceof HalError && err.kind === kind && pattern.test(err.message);

test('lists chips with base, ngpio and label', async () => {
  assert.deepEqual(await listSysfsChips(root), [
    { dir: 'gpiochip512', base: 512, ngpio: 58, label: 'pinctrl-bcm2711' },
    { dir: 'gpiochip570', base: 570, ngpio: 8, label: 'raspberrypi-exp-gpio' },
  ]);
});

test('the global number is base + line, whichever way the chip is named (kernel 6.6 base offset)', async () => {
  assert.equal(await resolveGpioNumber({ chip: 'gpiochip0', line: 17 }, root), 529);
  assert.equal(await resolveGpioNumber({ chip: 'gpiochip512', line: 17 }, root), 529);
  assert.equal(await resolveGpioNumber({ chip: 'pinctrl-bcm2711', line: 17 }, root), 529);
  assert.equal(await resolveGpioNumber({ chip: 'gpiochip1', line: 2 }, root), 572);
});

test('a line at or beyond ngpio is invalid-config', async () => {
  assert.equal(await resolveGpioNumber({ chip: 'gpiochip0', line: 57 }, root), 569);
  await assert.rejects(
    resolveGpioNumber({ chip: 'gpiochip0', line: 58 }, root),
    isHal('invalid-config', /58 lines/),
  );
});

test('an unknown chip is unavailable and lists the chips there are', async () => {
  await assert.rejects(
    findSysfsChip('gpiochip7', root),
    isHal('unavailable', /gpiochip512 \(label pinctrl-bcm2711/),
  );
});

test('an old kernel (base 0) resolves gpiochip0 to base 0', async () => {
  const old = await fakeSysfsTree([{ base: 0, ngpio: 54, label: 'pinctrl-bcm2835', charDev: 'gpiochip0' }]);
  try {
    assert.equal(await resolveGpioNumber({ chip: 'gpiochip0', line: 17 }, old), 17);
  } finally {
    await rm(old, { recursive: true, force: true });
  }
});

test('a name meaning two different chips is refused as ambiguous', async () => {
  const odd = await fakeSysfsTree([
    { base: 0, ngpio: 8, label: 'a', charDev: 'gpiochip1' },
    { base: 8, ngpio: 8, label: 'b', charDev: 'gpiochip0' },
  ]);
  try {
    await assert.rejects(
      resolveGpioNumber({ chip: 'gpiochip0', line: 1 }, odd),
      isHal('invalid-config', /several/),
    );
  } finally {
    await rm(odd, { recursive: true, force: true });
  }
});

test('a missing /sys/class/gpio says sysfs GPIO is gone and names CONFIG_GPIO_SYSFS', async () => {
  await assert.rejects(
    resolveGpioNumber({ chip: 'gpiochip0', line: 17 }, join(root, 'nope')),
    isHal('unavailable', /CONFIG_GPIO_SYSFS/),
  );
});
