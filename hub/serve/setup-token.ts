import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../common/durable-file.js';

/**
 * The first run's proof of being the owner: until an owner account exists,
 * `serve` keeps a random token in `<hub state>/web/setup-token` (0600), and
 * setting the owner's passphrase needs it. Whoever reaches the port first
 * cannot claim the hub; whoever can read the hub's state can.
 */
export class SetupToken {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'web', 'setup-token');
  }

  /** The token, created when there is none. */
  async ensure(): Promise<string> {
    const existing = await this.read();
    if (existing) return existing;
    const token = randomBytes(16).toString('hex');
    await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 });
    await writeFileDurably(this.path, `${token}\n`, 0o600);
    return token;
  }

  async matches(given: string): Promise<boolean> {
    const token = await this.read();
    if (!token) return false;
    const a = Buffer.from(token);
    const b = Buffer.from(given);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async clear(): Promise<void> {
    await rm(this.path, { force: true });
  }

  private async read(): Promise<string | undefined> {
    try {
      return (await readFile(this.path, 'utf8')).trim().slice(0, 64) || undefined;
    } catch {
      return undefined;
    }
  }
}
