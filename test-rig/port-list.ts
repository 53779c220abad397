import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface SerialPortInfo {
  path: string;
  vendorId?: string | undefined;
  productId?: string | undefined;
  manufacturer?: string | undefined;
  serialNumber?: string | undefined;
}

/**
 * Serial ports on this machine. node-serialport asks `udevadm`, which minimal
 * systems and containers lack; then the ports are read from sysfs directly:
 * every `/sys/class/tty/<name>` with a `device` link is a real port, and the
 * USB ids sit in the nearest ancestor of that device with `idVendor`.
 */
export async function listSerialPorts(
  options: { sysClassTty?: string; devDir?: string; viaUdev?: () => Promise<SerialPortInfo[]> } = {},
): Promise<{ ports: SerialPortInfo[]; source: 'udev' | 'sysfs' }> {
  const viaUdev =
    options.viaUdev ??
    (async () => {
      const { SerialPort } = await import('serialport');
      return SerialPort.list();
    });
  try {
    return { ports: await viaUdev(), source: 'udev' };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return {
    ports: await fromSysfs(options.sysClassTty ?? '/sys/class/tty', options.devDir ?? '/dev'),
    source: 'sysfs',
  };
}

async function fromSysfs(sysClassTty: string, devDir: string): Promise<SerialPortInfo[]> {
  let names: string[];
  try {
    names = (await readdir(sysClassTty)).sort();
  } catch {
    return [];
  }
  const ports: SerialPortInfo[] = [];
  for (const name of names) {
    let device: string;
    try {
      device = await realpath(join(sysClassTty, name, 'device'));
    } catch {
      continue; // a virtual terminal, not a port
    }
    ports.push({ path: join(devDir, name), ...(await usbIdsAbove(device)) });
  }
  return ports;
}

async function usbIdsAbove(device: string): Promise<Omit<SerialPortInfo, 'path'>> {
  for (let dir = device; dir !== dirname(dir); dir = dirname(dir)) {
    const vendorId = await readAttr(dir, 'idVendor');
    if (vendorId === undefined) continue;
    return {
      vendorId,
      productId: await readAttr(dir, 'idProduct'),
      manufacturer: await readAttr(dir, 'manufacturer'),
      serialNumber: await readAttr(dir, 'serial'),
    };
  }
  return {};
}

async function readAttr(dir: string, name: string): Promise<string | undefined> {
  const path = join(dir, name);
  try {
    if ((await stat(path)).size > 4096) return undefined;
    return (await readFile(path, 'utf8')).trim().slice(0, 128) || undefined;
  } catch {
    return undefined;
  }
}
