import { join } from 'node:path';
import { writeBoardFiles } from '../board/board-files.js';
import { keyMap } from '../board/manifest.js';
import { commit, installToInactiveSlot, switchToTrial } from '../board/slots.js';
import { publicKeyToText } from '../proto/index.js';
import { buildFirmwareBundle } from '../scripts/bundle-build.js';

/**
 * What a board holds after `doorbell-flash`: a development bundle (throw-away
 * key, sim hardware) built from this checkout, installed, booted and committed
 * into `<dir>/root`, with the board files around it. The benchmarks start its
 * daemon the way the unit does (test-support/slot-daemon.ts).
 */
export async function flashedRoot(dir: string): Promise<{ root: string; bundleBytes: number }> {
  const root = join(dir, 'root');
  const built = await buildFirmwareBundle({
    devKeyPath: join(dir, 'key', 'dev.pem'),
    hardware: 'open-doorbell/sim-x64',
    out: join(dir, 'fw.bundle'),
  });
  const trust = { keys: keyMap([built.key]), hardware: built.meta.hardware, allowDevelopment: true };
  const { slot } = await installToInactiveSlot(root, built.path, { trust });
  await switchToTrial(root, slot, { trust });
  await commit(root, { trust });
  await writeBoardFiles(root, {
    hardware: built.meta.hardware,
    releaseKeys: [publicKeyToText(built.key)],
    installPath: root,
    nodePath: process.execPath,
    slot,
  });
  return { root, bundleBytes: built.bytes };
}
