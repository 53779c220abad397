import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../../common/durable-file.js';
import type { Logger } from '../../common/logger.js';

const settingsSchema = z.object({ chimeMuted: z.boolean().default(false) }).strict();
export type Settings = z.infer<typeof settingsSchema>;

const MAX_SETTINGS_BYTES = 4096;

/**
 * Settings an owner changes at run time by command (Manage), kept in
 * `<stateDir>/settings.json` across restarts. A damaged file is logged and
 * replaced by the defaults: a setting must never stop the doorbell.
 */
export class DeviceSettings {
  private constructor(
    private readonly path: string,
    private values: Settings,
  ) {}

  static async open(stateDir: string, logger: Logger): Promise<DeviceSettings> {
    const path = join(stateDir, 'settings.json');
    let values: Settings = { chimeMuted: false };
    try {
      const { size } = await stat(path);
      if (size > MAX_SETTINGS_BYTES) throw new Error(`${size} bytes, above ${MAX_SETTINGS_BYTES}`);
      values = settingsSchema.parse(JSON.parse(await readFile(path, 'utf8')));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        logger.error({ err, path }, 'settings file unreadable: using the defaults');
      }
    }
    return new DeviceSettings(path, values);
  }

  get chimeMuted(): boolean {
    return this.values.chimeMuted;
  }

  async setChimeMuted(muted: boolean): Promise<void> {
    const next = { ...this.values, chimeMuted: muted };
    await writeFileDurably(this.path, `${JSON.stringify(next)}\n`, 0o600);
    this.values = next;
  }
}
