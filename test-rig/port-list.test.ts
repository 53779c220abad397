import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listSerialPorts } from './port-list.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'port-list-'));
  // devices/usb1/1-1 is a USB device (ids), 1-1:1.0 its interface, tty0 a virtual terminal.
  const usb = join(root, 'devices', 'usb1', '1-1');
  await mkdir(join(usb, '1-1:1.0', 'tty', 'ttyACM0'), { recursive: true });
  await writeFile(join(usb, 'idVendor'), '2e8a\n');
  await writeFile(join(usb, 'idProduct'), '000a\n');
  await writeFile(join(usb, 'manufacturer'), 'Open Doorbell\n');
  await writeFile(join(usb, 'serial'), 'RIG-7\n');
  const platform = join(root, 'devices', 'platform', 'serial8250');
  await mkdir(platform, { recursive: true });
  const tty = join(root, 'class', 'tty');
  for (const name of ['ttyACM0', 'ttyS0', 'tty0']) await mkdir(join(tty, name), { recursive: true });
  await symlink(join(usb, '1-1:1.0'), join(tty, 'ttyACM0', 'device'));
  await symlink(platform, join(tty, 'ttyS0', 'device'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const noUdevadm = async (): Promise<never> => {
  throw Object.assign(new Error('spawn udevadm ENOENT'), { code: 'ENOENT' });
};

test('without udevadm, ports come from sysfs with the USB ids of their device', async () => {
  const { ports, source } = await listSerialPorts({
    sysClassTty: join(root, 'class', 'tty'),
    viaUdev: noUdevadm,
  });
  assert.equal(source, 'sysfs');
  assert.deepEqual(ports, [
    {
      path: '/dev/ttyACM0',
      vendorId: '2e8a',
      productId: '000a',
      manufacturer: 'Open Doorbell',
      serialNumber: 'RIG-7',
    },
    { path: '/dev/ttyS0' },
  ]);
});

test('udev answers are used as they are; other failures are not hidden', async () => {
  const viaUdev = async () => [{ path: '/dev/ttyUSB3', vendorId: '0403', productId: '6001' }];
  assert.deepEqual(await listSerialPorts({ viaUdev }), { ports: await viaUdev(), source: 'udev' });
  const broken = async (): Promise<never> => {
    throw Object.assign(new Error('permission denied'), { code: 'EACCES' });
  };
  await assert.rejects(listSerialPorts({ viaUdev: broken }), /permission denied/);
});

test('a missing sysfs is an empty list, not a crash', async () => {
  const { ports } = await listSerialPorts({ sysClassTty: join(root, 'nope'), viaUdev: noUdevadm });
  assert.deepEqual(ports, []);
});
