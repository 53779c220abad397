import { constants as fsConstants } from 'node:fs';
import { chmod, mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileDurably } from '../common/durable-file.js';
import { publicKeyFromText, type VerifyKey } from '../proto/keys.js';
import { HARDWARE_PATTERN, keyMap } from './manifest.js';
import type { BoardTrust, SlotName } from './slots.js';
import { slotDir } from './slots.js';

/**
 * The board files around the slots:
 *
 *   <root>/etc/doorbell/config.json       the daemon's config (written once, never overwritten by a flash)
 *   <root>/etc/doorbell/hardware          the board's hardware compatibility string
 *   <root>/etc/doorbell/release-keys      trusted release public keys, one `ed25519:...` a line
 *   <root>/etc/doorbell/development       present when the board accepts development builds (flashed with --dev)
 *   <root>/etc/systemd/doorbell.service   the unit, rendered for the install path
 *   <root>/state/                         identity, counters, outbox (created by the daemon on first boot)
 */
export const boardPaths = (root: string) => ({
  config: join(root, 'etc', 'doorbell', 'config.json'),
  hardware: join(root, 'etc', 'doorbell', 'hardware'),
  releaseKeys: join(root, 'etc', 'doorbell', 'release-keys'),
  /** Present on a board flashed with --dev: it accepts development builds. */
  development: join(root, 'etc', 'doorbell', 'development'),
  unit: join(root, 'etc', 'systemd', 'doorbell.service'),
  state: join(root, 'state'),
});

/** In a slot: the unit template and the default config, shipped in the bundle. */
export const UNIT_TEMPLATE_FILE = 'doorbell.service';
export const DEFAULT_CONFIG_FILE = 'config.default.json';
export const DAEMON_FILE = 'doorbell.js';
export const DEFAULT_INSTALL_PATH = '/opt/doorbell';

const MAX_SMALL_FILE = 64 * 1024;

async function readSmall(path: string): Promise<string> {
  const handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const { size } = await handle.stat();
    if (size > MAX_SMALL_FILE) throw new Error(`${path} is ${size} bytes; at most ${MAX_SMALL_FILE}`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

export function parseHardware(text: string, source: string): string {
  const hw = text.trim();
  if (!HARDWARE_PATTERN.test(hw)) {
    throw new Error(`${source}: '${hw.slice(0, 80)}' is not a hardware string like open-doorbell/rpi-arm64`);
  }
  return hw;
}

/** The board's hardware string from `<root>/etc/doorbell/hardware`, or undefined when absent. */
export async function readBoardHardware(root: string): Promise<string | undefined> {
  const path = boardPaths(root).hardware;
  try {
    return parseHardware(await readSmall(path), path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Parses a release-keys file: one `ed25519:...` a line, `#` comments and blank lines ignored. */
export function parseReleaseKeys(text: string, source: string): VerifyKey[] {
  const keys: VerifyKey[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    try {
      keys.push(publicKeyFromText(line));
    } catch (err) {
      throw new Error(`${source}:${i + 1}: ${(err as Error).message}`);
    }
  }
  return keys;
}

/**
 * What the board trusts, from its files; used at boot and by the OTA agent.
 * `allowDevelopment` defaults to whether the board was flashed with --dev.
 */
export async function loadBoardTrust(root: string, allowDevelopment?: boolean): Promise<BoardTrust> {
  const paths = boardPaths(root);
  const development =
    allowDevelopment ??
    (await open(paths.development, 'r').then(
      async (h) => {
        await h.close();
        return true;
      },
      () => false,
    ));
  const hardware = await readBoardHardware(root);
  if (!hardware) throw new Error(`${paths.hardware} is missing`);
  const keys = parseReleaseKeys(await readSmall(paths.releaseKeys), paths.releaseKeys);
  if (keys.length === 0) throw new Error(`${paths.releaseKeys} holds no key`);
  return { keys: keyMap(keys), hardware, allowDevelopment: development };
}

export function renderUnit(template: string, installPath: string, nodePath: string): string {
  if (!/^\/[A-Za-z0-9._/-]*$/.test(installPath))
    throw new Error(`install path '${installPath}' must be absolute and plain`);
  if (!/^\/[A-Za-z0-9._/-]*$/.test(nodePath))
    throw new Error(`node path '${nodePath}' must be absolute and plain`);
  return template.replaceAll('@ROOT@', installPath.replace(/\/+$/, '') || '/').replaceAll('@NODE@', nodePath);
}

async function writeDurably(
  path: string,
  data: string,
  mode: number,
  onStep?: (w: string) => void,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFileDurably(path, data, mode, {
    tmpPath: `${path}.tmp`,
    ...(onStep ? { onStep: (s: string) => onStep(`${path}: ${s}`) } : {}),
  });
}

export interface BoardFilesOptions {
  hardware: string;
  releaseKeys: readonly string[];
  /** Where the root is on the board (for the unit's paths). */
  installPath: string;
  nodePath: string;
  /** The slot just installed: its unit template and default config are used. */
  slot: SlotName;
  /** Flashed with --dev: mark the board as accepting development builds (else the mark is removed). */
  development?: boolean;
  onStep?: (what: string) => void;
}

/** Writes the files around the slots. An existing config is kept. */
export async function writeBoardFiles(root: string, options: BoardFilesOptions): Promise<void> {
  const paths = boardPaths(root);
  const dir = slotDir(root, options.slot);
  await writeDurably(paths.hardware, `${options.hardware}\n`, 0o644, options.onStep);
  await writeDurably(paths.releaseKeys, `${options.releaseKeys.join('\n')}\n`, 0o644, options.onStep);
  if (options.development)
    await writeDurably(paths.development, 'accepts development builds\n', 0o644, options.onStep);
  else await rm(paths.development, { force: true });
  const template = await readFile(join(dir, UNIT_TEMPLATE_FILE), 'utf8');
  await writeDurably(
    paths.unit,
    renderUnit(template, options.installPath, options.nodePath),
    0o644,
    options.onStep,
  );
  try {
    await open(paths.config, 'r').then((h) => h.close());
  } catch {
    await writeDurably(
      paths.config,
      await readFile(join(dir, DEFAULT_CONFIG_FILE), 'utf8'),
      0o644,
      options.onStep,
    );
  }
  await mkdir(paths.state, { recursive: true, mode: 0o700 });
  await chmod(paths.state, 0o700);
}
