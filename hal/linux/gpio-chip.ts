import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GpioLineConfig } from '../config.js';
import { HalError } from '../errors.js';

export const SYSFS_GPIO_ROOT = '/sys/class/gpio';

export interface SysfsGpioChip {
  /** The sysfs directory name, `gpiochip<base>` (e.g. `gpiochip512`). */
  dir: string;
  base: number;
  ngpio: number;
  label: string;
}

async function readInt(path: string): Promise<number | undefined> {
  const text = (await readFile(path, 'utf8').catch(() => '')).trim();
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** Lists the chips under a sysfs GPIO root. Throws HalError('unavailable') when the root is absent. */
export async function listSysfsChips(root = SYSFS_GPIO_ROOT): Promise<SysfsGpioChip[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (err) {
    throw new HalError(
      'unavailable',
      'gpio',
      `${root} is absent: this kernel has no sysfs GPIO (built without CONFIG_GPIO_SYSFS, or it was removed); ` +
        'enable it, or use a GPIO character-device backend (libgpiod)',
      { cause: err },
    );
  }
  const chips: SysfsGpioChip[] = [];
  for (const dir of entries.filter((e) => /^gpiochip\d+$/.test(e)).sort()) {
    const base = await readInt(join(root, dir, 'base'));
    const ngpio = await readInt(join(root, dir, 'ngpio'));
    const label = (await readFile(join(root, dir, 'label'), 'utf8').catch(() => '')).trim();
    if (base !== undefined && ngpio !== undefined) chips.push({ dir, base, ngpio, label });
  }
  return chips;
}

/** True when the sysfs chip's device also carries the character-device name `name` (e.g. `gpiochip0`). */
async function hasCharDevName(root: string, chip: SysfsGpioChip, name: string): Promise<boolean> {
  if (!/^gpiochip\d+$/.test(name)) return false;
  return access(join(root, chip.dir, 'device', name)).then(
    () => true,
    () => false,
  );
}

/**
 * Finds the chip `name` refers to: the sysfs directory name (`gpiochip512`),
 * the character-device name libgpiod uses (`gpiochip0`, found as
 * `<dir>/device/gpiochip0`), or the label (`pinctrl-bcm2835`). Since kernel
 * 6.6 the sysfs name and the character-device name differ (base 512 on a Pi),
 * so a name that means two different chips is refused as ambiguous.
 */
export async function findSysfsChip(name: string, root = SYSFS_GPIO_ROOT): Promise<SysfsGpioChip> {
  const chips = await listSysfsChips(root);
  const matches = new Set<SysfsGpioChip>();
  for (const chip of chips) {
    if (chip.dir === name || (await hasCharDevName(root, chip, name))) matches.add(chip);
  }
  if (matches.size === 0) for (const chip of chips) if (chip.label === name) matches.add(chip);
  const found = [...matches];
  const describe = (c: SysfsGpioChip) =>
    `${c.dir} (label ${c.label || '?'}, base ${c.base}, ngpio ${c.ngpio})`;
  if (found.length > 1) {
    throw new HalError(
      'invalid-config',
      name,
      `names several GPIO chips: ${found.map(describe).join(', ')}; use a label`,
    );
  }
  const [chip] = found;
  if (chip === undefined) {
    const known = chips.map(describe).join(', ') || 'none';
    throw new HalError('unavailable', name, `no such GPIO chip; chips in ${root}: ${known}`);
  }
  return chip;
}

/**
 * The global sysfs GPIO number for `{ chip, line }`: the chip's base plus
 * the line offset. Throws HalError: `unavailable` (no sysfs GPIO, no such
 * chip), `invalid-config` (line >= ngpio, ambiguous chip name).
 */
export async function resolveGpioNumber(line: GpioLineConfig, root = SYSFS_GPIO_ROOT): Promise<number> {
  const chip = await findSysfsChip(line.chip, root);
  if (!Number.isInteger(line.line) || line.line < 0 || line.line >= chip.ngpio) {
    throw new HalError(
      'invalid-config',
      `${line.chip}:${line.line}`,
      `line ${line.line} is out of range: ${chip.dir} has ${chip.ngpio} lines (0..${chip.ngpio - 1})`,
    );
  }
  return chip.base + line.line;
}
