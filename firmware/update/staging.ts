import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HEADER_BYTES, headerExtent } from '../../board/manifest.js';
import { writeFileDurably } from '../../common/durable-file.js';
import { sha256File } from '../../common/hash-file.js';

/** A bundle arriving chunk by chunk. */
export interface Transfer {
  sha256: string; // hex
  size: number;
  nextOffset: number;
  /** Set once the signed manifest at the bundle's head has been verified. */
  manifest?: { version: string; securityCounter: number };
}

/**
 * Where a bundle is staged on the device: `bundle.part` (the bytes so far)
 * and `transfer.json` (which bundle, how big) in `<stateDir>/ota/`. A
 * transfer survives a restart: reopening finds how far it got.
 */
export class StagingArea {
  constructor(
    readonly dir: string,
    private readonly maxBundleBytes: number,
  ) {}

  get bundlePath(): string {
    return join(this.dir, 'bundle.part');
  }
  private get transferPath(): string {
    return join(this.dir, 'transfer.json');
  }

  /** The staged transfer, resumable from what is on disk; anything unreadable is discarded. */
  async load(): Promise<Transfer | undefined> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    try {
      const meta = JSON.parse(await readFile(this.transferPath, 'utf8')) as {
        sha256?: unknown;
        size?: unknown;
      };
      if (typeof meta.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(meta.sha256)) throw new Error('bad sha');
      const size = meta.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1 || size > this.maxBundleBytes)
        throw new Error('bad size');
      const staged = Math.min((await stat(this.bundlePath)).size, size);
      return { sha256: meta.sha256, size, nextOffset: staged };
    } catch {
      await this.discard();
      return undefined;
    }
  }

  /** Starts staging a new bundle: an empty file and its description, durably. */
  async create(sha256: string, size: number): Promise<Transfer> {
    const handle = await open(this.bundlePath, 'w', 0o600);
    await handle.close();
    await writeFileDurably(this.transferPath, `${JSON.stringify({ sha256, size })}\n`, 0o600);
    return { sha256, size, nextOffset: 0 };
  }

  /** Writes `data` at the transfer's next offset and advances it. */
  async append(t: Transfer, data: Uint8Array): Promise<void> {
    const handle = await open(this.bundlePath, fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW);
    try {
      await handle.write(data, 0, data.length, t.nextOffset);
    } finally {
      await handle.close();
    }
    t.nextOffset += data.length;
  }

  /**
   * The bundle's signed header once it can be judged: all of it when it has
   * arrived, or what has arrived when the fixed header is malformed (verifying
   * that names the problem). Undefined while more is needed.
   */
  async headerToVerify(t: Transfer): Promise<Buffer | undefined> {
    if (t.nextOffset < HEADER_BYTES) return undefined;
    const handle = await open(this.bundlePath, 'r');
    try {
      const head = Buffer.alloc(HEADER_BYTES);
      await handle.read(head, 0, HEADER_BYTES, 0);
      const complete = headerExtent(head);
      const malformed = complete === undefined || complete > t.size;
      if (!malformed && t.nextOffset < complete) return undefined;
      const len = Math.min(t.nextOffset, complete ?? t.nextOffset);
      const prefix = Buffer.alloc(len);
      await handle.read(prefix, 0, len, 0);
      return prefix;
    } finally {
      await handle.close();
    }
  }

  /** SHA-256 (hex) of what is staged. */
  sha256(): Promise<string> {
    return sha256File(this.bundlePath);
  }

  async discard(): Promise<void> {
    await rm(this.bundlePath, { force: true });
    await rm(this.transferPath, { force: true });
  }
}
