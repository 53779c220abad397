import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let dir: string | undefined;

/**
 * Environment for the executables a test starts: the hub's settings file in a
 * directory of this test process (removed when it exits), never the user's
 * ~/.config/open-doorbell/hub.json, which a test's `pair` would otherwise write.
 */
export function isolatedEnv(): NodeJS.ProcessEnv {
  if (dir === undefined) {
    const made = mkdtempSync(join(tmpdir(), 'doorbell-test-config-'));
    dir = made;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  return { DOORBELL_HUB_CONFIG: join(dir, 'hub.json') };
}
