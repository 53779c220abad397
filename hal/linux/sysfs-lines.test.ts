import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { parseHalConfig } from '../config.js';
import { kindForErrno } from '../errno.js';
import { HalError } from '../errors.js';
import { fakeGpioDriver, fakeSysfsTree } from './fake-sysfs.js';
import { SysfsInputLine } from './input-line.js';
import { openLinuxBackend } from './linux-backend.js';
import { SysfsOutputLine } from './output-line.js';

const logger = silentLogger();

test('errno codes map to the closed kinds', () => {
  assert.equal(kindForErrno('EACCES'), 'permission');
  assert.equal(kindForErrno('EBUSY'), 'busy');
  assert.equal(kindForErrno('ENOENT'), 'unavailable');
  assert.equal(kindForErrno('EIO'), 'io');
  assert.equal(kindForErrno(undefined), 'io');
});

test('opening maps errno to HalError kinds; an inaccessible sysfs is unavailable', () => {
  for (const [code, kind] of [
    ['EACCES', 'permission'],
    ['EBUSY', 'busy'],
    ['ENOENT', 'unavailable'],
    ['EINVAL', 'io'],
  ]) {
    const { driver } = fakeGpioDriver({ failOpen: code });
    assert.throws(
      () => SysfsInputLine.open({ name: 'b', gpio: 529, activeLow: true, pull: 'up' }, { driver, logger }),
      (err) => err instanceof HalError && err.kind === kind,
    );
  }
  const { driver } = fakeGpioDriver({ accessible: false });
  assert.throws(
    () => SysfsOutputLine.open({ name: 'c', gpio: 539, activeLow: false }, { driver, logger }),
    (err) => err instanceof HalError && err.kind === 'unavailable',
  );
});

test('an input line watches both edges, stamps them with hrtime and logs that sysfs cannot pull', async () => {
  const { driver, pins } = fakeGpioDriver();
  const infos: string[] = [];
  const spy = silentLogger();
  spy.info = ((_: unknown, msg: string) => {
    infos.push(msg);
  }) as typeof spy.info;
  const line = SysfsInputLine.open(
    { name: 'b', gpio: 529, activeLow: true, pull: 'up' },
    { driver, logger: spy },
  );
  const pin = pins[0];
  assert.ok(pin);
  assert.equal(pin.activeLow, true);
  assert.match(infos.join(), /device tree.*external resistor/);
  const edges: Array<[boolean, bigint]> = [];
  line.watch((level, atNs) => edges.push([level, atNs]));
  const before = process.hrtime.bigint();
  pin.interrupt(1);
  pin.interrupt(0, new Error('EIO')); // logged, not delivered
  pin.interrupt(0);
  assert.deepEqual(
    edges.map((e) => e[0]),
    [true, false],
  );
  assert.ok((edges[0]?.[1] ?? 0n) >= before);
  assert.equal(line.read(), false);
  await line.close();
  assert.equal(pin.exported, false);
  assert.throws(
    () => line.read(),
    (err) => err instanceof HalError && err.kind === 'closed',
  );
});

test('an output line starts deasserted: active-low lines open with raw direction high', async () => {
  const { driver, pins } = fakeGpioDriver();
  const relay = SysfsOutputLine.open({ name: 'c', gpio: 539, activeLow: true }, { driver, logger });
  const led = SysfsOutputLine.open({ name: 'l', gpio: 534, activeLow: false }, { driver, logger });
  assert.deepEqual(
    pins.map((p) => p.direction),
    ['high', 'low'],
  );
  assert.equal(relay.read(), false);
  relay.write(true);
  assert.equal(pins[0]?.value, 1);
  assert.equal(relay.read(), true);
  await relay.close();
  await led.close();
  assert.throws(
    () => relay.write(false),
    (err) => err instanceof HalError && err.kind === 'closed',
  );
});

test('the linux backend resolves every line from the chip base and opens them', async () => {
  const root = await fakeSysfsTree();
  try {
    const { driver, pins } = fakeGpioDriver();
    const gpio = (line: number) => ({ gpio: { chip: 'gpiochip0', line } });
    const config = parseHalConfig({ backend: 'linux', button: gpio(17), chime: gpio(27), led: gpio(22) });
    const backend = await openLinuxBackend(config, { logger, sysfsRoot: root, driver });
    assert.deepEqual(
      pins.map((p) => [p.gpio, p.direction]),
      [
        [529, 'in'],
        [539, 'low'],
        [534, 'low'],
      ],
    );
    await Promise.all([backend.buttonLine.close(), backend.chimeLine.close(), backend.ledLine.close()]);
    await backend.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('when a later line fails, the lines already opened are released', async () => {
  const root = await fakeSysfsTree();
  try {
    const { driver, pins } = fakeGpioDriver();
    const gpio = (line: number) => ({ gpio: { chip: 'gpiochip0', line } });
    const config = parseHalConfig({ backend: 'linux', button: gpio(17), chime: gpio(27), led: gpio(99) });
    await assert.rejects(
      openLinuxBackend(config, { logger, sysfsRoot: root, driver }),
      (err) => err instanceof HalError && err.kind === 'invalid-config',
    );
    assert.deepEqual(
      pins.map((p) => p.exported),
      [false, false],
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
