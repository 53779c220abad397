import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../../common/durable-file.js';
import { isDeviceId } from '../../proto/index.js';

/**
 * Footage requests filed with the hub (`<hubState>/shares/requests.json`):
 * who asks, why, for which time window, to which age recipient, until when.
 * Each step (requested, approved, denied, expired) is also an entry in the
 * doorbell's audit log, through RecordShare. Nothing here is ever approved
 * automatically: only the owner's `share approve` changes a request to
 * approved.
 */

export const DEFAULT_REQUEST_LIFETIME_MS = 7 * 24 * 3600 * 1000;
const MAX_FILE_BYTES = 4 * 1024 * 1024;

const requestSchema = z
  .object({
    id: z.string().regex(/^[0-9a-f]{16}$/),
    deviceId: z.string().refine(isDeviceId, 'not a device id'),
    requester: z.string().min(1).max(64),
    reason: z.string().max(200),
    fromMs: z.number().int().min(0),
    untilMs: z.number().int().min(0),
    recipient: z.string().max(100),
    createdAtMs: z.number().int().min(0),
    expiresAtMs: z.number().int().min(0),
    state: z.enum(['open', 'approved', 'denied', 'expired']),
    /** The doorbell's audit entry of the latest step (its index). */
    auditIndex: z.number().int().min(0).optional(),
  })
  .strict();
export type ShareRequest = z.infer<typeof requestSchema>;
const fileSchema = z.object({ version: z.literal(1), requests: z.array(requestSchema) }).strict();

export class ShareStore {
  private readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'shares', 'requests.json');
  }

  static newId(): string {
    return randomBytes(8).toString('hex');
  }

  async list(): Promise<ShareRequest[]> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return [];
      throw err;
    }
    if (bytes.length > MAX_FILE_BYTES) throw new Error(`${this.path} is larger than 4 MiB`);
    const parsed = fileSchema.safeParse(JSON.parse(bytes.toString('utf8')));
    if (!parsed.success) throw new Error(`${this.path} is invalid: ${parsed.error.issues[0]?.message}`);
    return parsed.data.requests;
  }

  async get(id: string): Promise<ShareRequest | undefined> {
    return (await this.list()).find((r) => r.id === id);
  }

  /** Adds or replaces a request (by id). */
  async put(request: ShareRequest): Promise<void> {
    const checked = requestSchema.parse(request);
    const all = (await this.list()).filter((r) => r.id !== checked.id);
    all.push(checked);
    await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 });
    await writeFileDurably(this.path, JSON.stringify({ version: 1, requests: all }), 0o600);
  }
}
