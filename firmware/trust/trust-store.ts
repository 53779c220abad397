import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../../common/durable-file.js';
import type { Logger } from '../../common/logger.js';
import {
  ageRecipientProblem,
  publicKeyFromText,
  publicKeyToText,
  recipientForDisplay,
  type VerifyKey,
  verifyKeyFromRaw,
} from '../../proto/index.js';
import { isRole, ROLE_NAMES, Role, type RoleName, roleFromName, roleName } from '../../proto/roles.js';

/**
 * The device's enrolled keys, their roles, the owner's footage recipients and
 * the key epoch, in `<stateDir>/enrolment.json`. Keys from the config file
 * (`trust.hubKeys`) are listed too but are not stored and cannot be changed
 * by command. Every change is written durably before it takes effect and
 * before the command is answered; changes run one at a time.
 *
 * The key epoch never goes down. Removing, rotating or demoting a key raises
 * it, and commands that name an older epoch are refused, so a command signed
 * before a revocation is void after it. The epoch is also kept in a second
 * file, `key-epoch`, written after enrolment.json: an enrolment file older
 * than that epoch (restored from a backup, say) is refused as a whole, so a
 * revoked key cannot come back that way.
 */

export const MAX_ENROLMENT_FILE_BYTES = 64 * 1024;
export const MAX_ENROLLED_KEYS = 32;
export const MAX_RECIPIENTS = 16;
export const MAX_LABEL_CHARS = 64;

const enrolmentFileSchema = z
  .object({
    version: z.literal(1),
    epoch: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    keys: z
      .array(
        z
          .object({
            publicKey: z.string().max(100),
            role: z.enum(ROLE_NAMES),
            label: z.string().max(MAX_LABEL_CHARS),
            addedAtMs: z.number().int().min(0),
          })
          .strict(),
      )
      .max(MAX_ENROLLED_KEYS),
    recipients: z.array(z.string().refine((r) => ageRecipientProblem(r) === undefined)).max(MAX_RECIPIENTS),
  })
  .strict();

type EnrolmentFile = z.infer<typeof enrolmentFileSchema>;

export interface EnrolledKeyInfo {
  readonly key: VerifyKey;
  readonly role: Role;
  readonly label: string;
  readonly source: 'paired' | 'config';
}

/** A change refused for what it asks (the wire's INVALID_ARGUMENT). */
export class TrustChangeError extends Error {
  override readonly name = 'TrustChangeError';
}

export interface ConfiguredKey {
  key: VerifyKey;
  role: Role;
}

export class TrustStore {
  private paired: EnrolmentFile;
  private readonly configured: ReadonlyMap<string, ConfiguredKey>;
  private verifyKeys = new Map<string, VerifyKey>();
  private roles = new Map<string, Role>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    file: EnrolmentFile,
    configured: ConfiguredKey[],
    private readonly nowMs: () => number,
    /** Set when the stored enrolment could not be used; pairing stays refused until a factory reset. */
    readonly problem: string | undefined,
  ) {
    this.paired = file;
    this.configured = new Map(configured.map((c) => [c.key.keyId, c]));
    this.rebuild();
  }

  static async open(
    stateDir: string,
    configured: ConfiguredKey[],
    options: { logger: Logger; nowMs?: () => number },
  ): Promise<TrustStore> {
    const nowMs = options.nowMs ?? Date.now;
    const empty: EnrolmentFile = { version: 1, epoch: 0, keys: [], recipients: [] };
    let floor = 0;
    let file = empty;
    let problem: string | undefined;
    try {
      floor = await readEpochFloor(join(stateDir, 'key-epoch'));
      file = (await readEnrolment(join(stateDir, 'enrolment.json'))) ?? { ...empty, epoch: floor };
      if (file.epoch < floor) {
        problem = `enrolment.json is at key epoch ${file.epoch}, older than the device's epoch ${floor}: it was rolled back`;
      }
    } catch (err) {
      problem = (err as Error).message;
    }
    if (problem !== undefined) {
      options.logger.error(
        { problem },
        'stored enrolment refused: paired keys are ignored and pairing is refused until a factory reset',
      );
      file = { ...empty, epoch: floor };
    }
    return new TrustStore(stateDir, file, configured, nowMs, problem);
  }

  get epoch(): number {
    return this.paired.epoch;
  }

  /** Whether an Administer key is enrolled (by pairing or in the config file). */
  get isPaired(): boolean {
    for (const role of this.roles.values()) if (role === Role.ADMINISTER) return true;
    return false;
  }

  get recipients(): readonly string[] {
    return this.paired.recipients;
  }

  /** Every enrolled key by key id, for the verifier. */
  get keys(): ReadonlyMap<string, VerifyKey> {
    return this.verifyKeys;
  }

  roleOf(keyId: string): Role | undefined {
    return this.roles.get(keyId);
  }

  list(): EnrolledKeyInfo[] {
    const out: EnrolledKeyInfo[] = [...this.configured.values()].map((c) => ({
      key: c.key,
      role: c.role,
      label: 'config',
      source: 'config' as const,
    }));
    for (const k of this.paired.keys) {
      out.push({
        key: publicKeyFromText(k.publicKey),
        role: roleFromName(k.role),
        label: k.label,
        source: 'paired',
      });
    }
    return out;
  }

  /**
   * Enrols the owner (Administer), optionally a hub key, and the recipients,
   * all or nothing. Pairing never changes an existing key's role: a key that
   * is already enrolled (paired or in the config file) with another role
   * refuses the whole pairing; with the same role it is left as it is.
   * Resolves with the keys newly enrolled.
   */
  pair(input: {
    owner: VerifyKey;
    ownerLabel: string;
    hub?: { key: VerifyKey; role: Role; label: string };
    recipients: string[];
  }): Promise<{ keyId: string; role: Role }[]> {
    return this.change((file) => {
      if (this.problem !== undefined)
        throw new TrustChangeError('the stored enrolment is damaged; factory-reset first');
      checkRecipients(input.recipients, true);
      const wanted = [{ key: input.owner, role: Role.ADMINISTER, label: input.ownerLabel }];
      if (input.hub) wanted.push({ ...input.hub, role: checkRole(input.hub.role) });
      if (wanted.length === 2 && wanted[0]?.key.keyId === wanted[1]?.key.keyId) {
        throw new TrustChangeError('the hub key is the owner key');
      }
      const enrolled: { keyId: string; role: Role }[] = [];
      for (const { key, role, label } of wanted) {
        const current = this.currentRole(file, key.keyId);
        if (current === undefined) {
          upsert(file, key, role, label, this.nowMs());
          enrolled.push({ keyId: key.keyId, role });
        } else if (current !== role) {
          throw new TrustChangeError(
            `key ${key.keyId} is already enrolled as ${roleName(current)}; pairing never changes a role`,
          );
        }
      }
      file.recipients = dedupe([...file.recipients, ...input.recipients]);
      return enrolled;
    });
  }

  /** The role of `keyId` in `file` or the config file, if enrolled. */
  private currentRole(file: EnrolmentFile, keyId: string): Role | undefined {
    const configured = this.configured.get(keyId);
    if (configured) return configured.role;
    const entry = file.keys[findIndex(file, keyId)];
    return entry === undefined ? undefined : roleFromName(entry.role);
  }

  add(raw: Uint8Array, role: Role, label: string): Promise<string> {
    return this.change((file) => {
      const key = parseRaw(raw);
      if (this.configured.has(key.keyId) || findIndex(file, key.keyId) >= 0) {
        throw new TrustChangeError(`key ${key.keyId} is already enrolled`);
      }
      upsert(file, key, checkRole(role), label, this.nowMs());
      return key.keyId;
    });
  }

  remove(keyId: string): Promise<void> {
    return this.change((file) => {
      const index = this.pairedIndex(file, keyId);
      const next = file.keys.filter((_, i) => i !== index);
      this.checkAdministerRemains(next);
      file.keys = next;
      file.epoch += 1;
    });
  }

  rotate(keyId: string, newRaw: Uint8Array): Promise<string> {
    return this.change((file) => {
      const index = this.pairedIndex(file, keyId);
      const key = parseRaw(newRaw);
      if (this.configured.has(key.keyId) || findIndex(file, key.keyId) >= 0) {
        throw new TrustChangeError(`key ${key.keyId} is already enrolled`);
      }
      const old = file.keys[index];
      if (old === undefined) throw new TrustChangeError(`key ${keyId} is not enrolled`);
      file.keys[index] = { ...old, publicKey: publicKeyToText(key), addedAtMs: this.nowMs() };
      file.epoch += 1;
      return key.keyId;
    });
  }

  setRole(keyId: string, role: Role): Promise<void> {
    return this.change((file) => {
      const index = this.pairedIndex(file, keyId);
      const old = file.keys[index];
      if (old === undefined) throw new TrustChangeError(`key ${keyId} is not enrolled`);
      const next = checkRole(role);
      const updated = [...file.keys];
      updated[index] = { ...old, role: roleName(next) };
      this.checkAdministerRemains(updated);
      file.keys = updated;
      if (next < roleFromName(old.role)) file.epoch += 1;
    });
  }

  setRecipients(recipients: string[]): Promise<void> {
    return this.change((file) => {
      checkRecipients(recipients, false);
      file.recipients = dedupe(recipients);
    });
  }

  /**
   * Applies `mutate` to a copy, writes it durably, then the epoch floor, and
   * only then makes it current. One change at a time.
   */
  private change<T>(mutate: (file: EnrolmentFile) => T): Promise<T> {
    const run = async (): Promise<T> => {
      const file: EnrolmentFile = structuredClone(this.paired);
      const result = mutate(file);
      enrolmentFileSchema.parse(file);
      await writeFileDurably(join(this.dir, 'enrolment.json'), `${JSON.stringify(file, null, 2)}\n`, 0o600);
      if (file.epoch !== this.paired.epoch) {
        await writeFileDurably(join(this.dir, 'key-epoch'), `${file.epoch}\n`, 0o600);
      }
      this.paired = file;
      this.rebuild();
      return result;
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private pairedIndex(file: EnrolmentFile, keyId: string): number {
    if (this.configured.has(keyId)) {
      throw new TrustChangeError(`key ${keyId} comes from the config file; change it there`);
    }
    const index = findIndex(file, keyId);
    if (index < 0) throw new TrustChangeError(`key ${keyId} is not enrolled`);
    return index;
  }

  private checkAdministerRemains(keys: EnrolmentFile['keys']): void {
    const configuredAdmin = [...this.configured.values()].some((c) => c.role === Role.ADMINISTER);
    if (!configuredAdmin && !keys.some((k) => k.role === 'administer')) {
      throw new TrustChangeError('the last Administer key cannot be removed or demoted');
    }
  }

  private rebuild(): void {
    const keys = new Map<string, VerifyKey>();
    const roles = new Map<string, Role>();
    for (const k of this.paired.keys) {
      const key = publicKeyFromText(k.publicKey);
      keys.set(key.keyId, key);
      roles.set(key.keyId, roleFromName(k.role));
    }
    for (const c of this.configured.values()) {
      keys.set(c.key.keyId, c.key);
      roles.set(c.key.keyId, c.role);
    }
    this.verifyKeys = keys;
    this.roles = roles;
  }
}

function findIndex(file: EnrolmentFile, keyId: string): number {
  return file.keys.findIndex((k) => publicKeyFromText(k.publicKey).keyId === keyId);
}

function upsert(file: EnrolmentFile, key: VerifyKey, role: Role, label: string, nowMs: number): void {
  const entry = {
    publicKey: publicKeyToText(key),
    role: roleName(role),
    label: checkLabel(label),
    addedAtMs: nowMs,
  };
  const index = findIndex(file, key.keyId);
  if (index >= 0) file.keys[index] = entry;
  else if (file.keys.length >= MAX_ENROLLED_KEYS)
    throw new TrustChangeError(`at most ${MAX_ENROLLED_KEYS} keys`);
  else file.keys.push(entry);
}

function parseRaw(raw: Uint8Array | null | undefined): VerifyKey {
  try {
    return verifyKeyFromRaw(raw ?? new Uint8Array());
  } catch (err) {
    throw new TrustChangeError(`not an Ed25519 public key: ${(err as Error).message}`);
  }
}

function checkRole(role: unknown): Role {
  if (!isRole(role)) throw new TrustChangeError('role must be view, operate, manage or administer');
  return role;
}

function checkLabel(label: string): string {
  if (label.length > MAX_LABEL_CHARS || /[\p{Cc}]/u.test(label)) {
    throw new TrustChangeError(`a label is at most ${MAX_LABEL_CHARS} printable characters`);
  }
  return label;
}

function checkRecipients(recipients: string[], allowEmpty: boolean): void {
  if (!allowEmpty && recipients.length === 0) throw new TrustChangeError('at least one footage recipient');
  if (recipients.length > MAX_RECIPIENTS) throw new TrustChangeError(`at most ${MAX_RECIPIENTS} recipients`);
  for (const r of recipients) {
    const problem = ageRecipientProblem(r);
    if (problem !== undefined) throw new TrustChangeError(`${recipientForDisplay(r)}: ${problem}`);
  }
}

function dedupe(values: string[]): string[] {
  return [...new Set(values)];
}

async function readEnrolment(path: string): Promise<EnrolmentFile | undefined> {
  let text: string;
  try {
    const { size } = await stat(path);
    if (size > MAX_ENROLMENT_FILE_BYTES)
      throw new Error(`${path} is ${size} bytes, above ${MAX_ENROLMENT_FILE_BYTES}`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: EnrolmentFile;
  try {
    parsed = enrolmentFileSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new Error(`${path} is not a valid enrolment file: ${(err as Error).message.slice(0, 300)}`);
  }
  for (const k of parsed.keys) publicKeyFromText(k.publicKey);
  return parsed;
}

async function readEpochFloor(path: string): Promise<number> {
  let text: string;
  try {
    const { size } = await stat(path);
    if (size > 32) throw new Error(`${path} is ${size} bytes; it holds one number`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const value = Number(text.trim());
  if (!/^\d{1,15}\n?$/.test(text) || !Number.isSafeInteger(value))
    throw new Error(`${path} does not hold an epoch`);
  return value;
}

/** For role names in configs and CLIs. */
export type { RoleName };
