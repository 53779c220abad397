import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../../common/durable-file.js';

/** The web app's accounts: the owner, and View accounts (a family member) who see events only. */
export type WebRole = 'owner' | 'view';

export const ACCOUNT_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
export const MIN_PASSPHRASE_CHARS = 12;
export const MAX_PASSPHRASE_CHARS = 1024;
/** A hub has few accounts; the file is read whole and capped. */
const MAX_ACCOUNTS = 32;
const MAX_FILE_BYTES = 64 * 1024;
/** scrypt at N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s here): what OWASP recommends at least. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_BYTES = 32;

const accountSchema = z
  .object({
    name: z.string().regex(ACCOUNT_NAME),
    role: z.enum(['owner', 'view']),
    scrypt: z.object({ N: z.number().int(), r: z.number().int(), p: z.number().int() }).strict(),
    salt: z.string().max(64),
    hash: z.string().max(128),
  })
  .strict();
const fileSchema = z.object({ v: z.literal(1), accounts: z.array(accountSchema).max(MAX_ACCOUNTS) }).strict();
type StoredAccount = z.infer<typeof accountSchema>;

export class AccountError extends Error {
  override readonly name = 'AccountError';
  constructor(
    readonly kind: 'bad-name' | 'bad-passphrase' | 'exists' | 'full' | 'damaged',
    message: string,
  ) {
    super(message);
  }
}

function derive(
  passphrase: string,
  salt: Buffer,
  params: { N: number; r: number; p: number },
): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 128 * params.N * params.r * 2 };
  return new Promise((resolve, reject) =>
    scrypt(passphrase.normalize('NFC'), salt, KEY_BYTES, options, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/**
 * `<hub state>/web/accounts.json` (0600, written durably): each account's
 * name, role and scrypt hash of its passphrase, never the passphrase.
 */
export class AccountStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'web', 'accounts.json');
  }

  async list(): Promise<{ name: string; role: WebRole }[]> {
    return (await this.read()).map(({ name, role }) => ({ name, role }));
  }

  async hasOwner(): Promise<boolean> {
    return (await this.read()).some((a) => a.role === 'owner');
  }

  async add(name: string, role: WebRole, passphrase: string): Promise<void> {
    if (!ACCOUNT_NAME.test(name))
      throw new AccountError(
        'bad-name',
        'a name is 1 to 32 lowercase letters, digits, - or _, starting with a letter',
      );
    if (passphrase.length < MIN_PASSPHRASE_CHARS || passphrase.length > MAX_PASSPHRASE_CHARS)
      throw new AccountError(
        'bad-passphrase',
        `a passphrase is ${MIN_PASSPHRASE_CHARS} to ${MAX_PASSPHRASE_CHARS} characters`,
      );
    const accounts = await this.read();
    if (accounts.some((a) => a.name === name)) throw new AccountError('exists', `${name} exists`);
    if (accounts.length >= MAX_ACCOUNTS) throw new AccountError('full', `at most ${MAX_ACCOUNTS} accounts`);
    const salt = randomBytes(16);
    const hash = await derive(passphrase, salt, SCRYPT);
    accounts.push({
      name,
      role,
      scrypt: { ...SCRYPT },
      salt: salt.toString('base64'),
      hash: hash.toString('base64'),
    });
    await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 });
    await writeFileDurably(this.path, `${JSON.stringify({ v: 1, accounts }, null, 2)}\n`, 0o600);
  }

  /** The account, when the passphrase is its; undefined otherwise, in about the same time either way. */
  async verify(name: string, passphrase: string): Promise<{ name: string; role: WebRole } | undefined> {
    const account = (await this.read()).find((a) => a.name === name);
    if (!account || passphrase.length > MAX_PASSPHRASE_CHARS) {
      // The same scrypt as a real check: a wrong name costs what a wrong passphrase does.
      await derive(passphrase.slice(0, MAX_PASSPHRASE_CHARS), randomBytes(16), SCRYPT);
      return undefined;
    }
    const expected = Buffer.from(account.hash, 'base64');
    const got = await derive(passphrase, Buffer.from(account.salt, 'base64'), account.scrypt);
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return undefined;
    return { name: account.name, role: account.role };
  }

  private async read(): Promise<StoredAccount[]> {
    let text: string;
    try {
      if ((await stat(this.path)).size > MAX_FILE_BYTES)
        throw new AccountError('damaged', `${this.path} is too large`);
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AccountError('damaged', `${this.path} is not JSON`);
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success)
      throw new AccountError('damaged', `${this.path}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return parsed.data.accounts;
  }
}
