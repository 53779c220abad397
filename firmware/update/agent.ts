import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBoardTrust } from '../../board/board-files.js';
import {
  BundleError,
  bufferSource,
  HEADER_BYTES,
  headerExtent,
  MAX_MANIFEST_BYTES,
  type Manifest,
  type TrustPolicy,
  verifyManifest,
} from '../../board/manifest.js';
import {
  type BoardTrust,
  commit,
  currentSlot,
  FREE_SPACE_MARGIN_BYTES,
  freeBytes,
  installToInactiveSlot,
  readBootState,
  rollback,
  SLOT_MANIFEST_FILE,
  SlotError,
  type SlotName,
  slotDir,
  switchToTrial,
} from '../../board/slots.js';
import { writeFileDurably } from '../../common/durable-file.js';
import type { Logger } from '../../common/logger.js';
import { failure } from '../../proto/command-result.js';
import { doorbell } from '../../proto/index.js';
import type { AuditLog } from '../audit-log.js';
import type { EventBody } from '../services/event-signer.js';

/** Largest OtaChunk.data: the signed envelope is capped at 16 KiB. */
export const MAX_OTA_CHUNK_BYTES = 12 * 1024;
export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_TRIAL_HEALTH_TIMEOUT_MS = 60_000;
/** The exit status that tells systemd (Restart=on-failure) to start the daemon again. */
export const RESTART_EXIT_CODE = 75;

const { ErrorKind } = doorbell.v1;
type Result = doorbell.v1.ICommandResult;

export type OtaStage =
  | 'begun'
  | 'received'
  | 'verified'
  | 'refused'
  | 'written'
  | 'switched'
  | 'self-test'
  | 'committed'
  | 'rolled-back'
  | 'failed';

export interface UpdateAgentDeps {
  /** The flashed board's root (DOORBELL_ROOT). */
  root: string;
  /** The daemon's state directory: staging lives in `<stateDir>/ota/`. */
  stateDir: string;
  logger: Logger;
  nowMs: () => number;
  audit: AuditLog;
  /** Queues a signed event (through the durable outbox). */
  emit: (body: EventBody) => void;
  /** Called after a switch or a rollback: stop cleanly and exit RESTART_EXIT_CODE. */
  requestRestart: (reason: string) => void;
  maxBundleBytes?: number;
  trialHealthTimeoutMs?: number;
}

/** How the trial's health check reaches the broker. */
export interface HealthProbe {
  /** Resolves once the MQTT connection is up. */
  connected(): Promise<void>;
  /** Signs and publishes an event directly at QoS 1; resolves on the broker's PUBACK. */
  publishAcked(body: EventBody): Promise<void>;
}

interface Transfer {
  sha256: string; // hex
  size: number;
  nextOffset: number;
  manifest?: { version: string; securityCounter: number };
}

interface Pending {
  sha256: string;
  version: string;
  securityCounter: number;
  slot: SlotName;
}

const hex = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? []).toString('hex');
const isSha = (b: Uint8Array | null | undefined): b is Uint8Array => b != null && b.length === 32;

/**
 * The device side of updates over MQTT (docs/flashing.md, "Updates over
 * MQTT"): stages a bundle in `<stateDir>/ota/` chunk by chunk (resumable and
 * idempotent), verifies its signed manifest as soon as it has arrived,
 * installs it into the inactive slot with `installToInactiveSlot` (which
 * verifies everything before writing), switches to it as a trial and asks
 * for a restart; after the restart `checkTrial` commits it once the broker
 * acknowledged a signed self-test event, or rolls it back. Every step is a
 * signed OtaProgress event and an audit log entry. Operations are
 * serialised; while an apply runs, other transfer commands answer BUSY.
 */
export class UpdateAgent {
  private transfer: Transfer | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private applying = false;
  private restarting = false;
  private closed = false;
  private stopTrial: (() => void) | undefined;
  private readonly dir: string;
  private readonly maxBundleBytes: number;

  private constructor(
    private readonly deps: UpdateAgentDeps,
    private readonly trust: BoardTrust,
  ) {
    this.dir = join(deps.stateDir, 'ota');
    this.maxBundleBytes = deps.maxBundleBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  }

  /** Loads the board's trust (release keys, hardware) and any staged transfer. */
  static async open(deps: UpdateAgentDeps): Promise<UpdateAgent> {
    const trust = await loadBoardTrust(deps.root);
    const agent = new UpdateAgent(deps, trust);
    await mkdir(agent.dir, { recursive: true, mode: 0o700 });
    agent.transfer = await agent.loadTransfer();
    return agent;
  }

  private get stagingPath(): string {
    return join(this.dir, 'bundle.part');
  }
  private get transferPath(): string {
    return join(this.dir, 'transfer.json');
  }
  private get pendingPath(): string {
    return join(this.dir, 'pending.json');
  }

  private async loadTransfer(): Promise<Transfer | undefined> {
    try {
      const meta = JSON.parse(await readFile(this.transferPath, 'utf8')) as {
        sha256?: unknown;
        size?: unknown;
      };
      if (typeof meta.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(meta.sha256)) throw new Error('bad sha');
      if (
        !Number.isSafeInteger(meta.size) ||
        (meta.size as number) < 1 ||
        (meta.size as number) > this.maxBundleBytes
      )
        throw new Error('bad size');
      const size = meta.size as number;
      const staged = Math.min((await stat(this.stagingPath)).size, size);
      return { sha256: meta.sha256, size, nextOffset: staged };
    } catch {
      await this.discard();
      return undefined;
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private busy(): Result | undefined {
    if (this.restarting) return failure(ErrorKind.BUSY, 'an update was applied; the device is restarting');
    if (this.applying) return failure(ErrorKind.BUSY, 'an update is being applied');
    return undefined;
  }

  begin(c: doorbell.v1.IOtaBegin | null | undefined): Promise<Result> {
    const busy = this.busy();
    if (busy) return Promise.resolve(busy);
    const size = Number(c?.bundleSize ?? 0);
    if (!isSha(c?.bundleSha256))
      return Promise.resolve(failure(ErrorKind.INVALID_ARGUMENT, 'bundle_sha256 must be 32 bytes'));
    if (!Number.isSafeInteger(size) || size < HEADER_BYTES || size > this.maxBundleBytes) {
      return Promise.resolve(
        failure(
          ErrorKind.INVALID_ARGUMENT,
          `bundle_size must be ${HEADER_BYTES} to ${this.maxBundleBytes} bytes, got ${size}`,
        ),
      );
    }
    const sha = hex(c.bundleSha256);
    return this.serial(async () => {
      const t = this.transfer;
      if (t && t.sha256 === sha && t.size === size) {
        this.progress('begun', { detail: `resumed at ${t.nextOffset}` });
        return this.stateResult();
      }
      await this.discard();
      const free = await freeBytes(this.deps.stateDir);
      if (free < size + FREE_SPACE_MARGIN_BYTES) {
        const reason = `no-space: ${free} bytes free; staging needs ${size + FREE_SPACE_MARGIN_BYTES}`;
        this.transfer = { sha256: sha, size, nextOffset: 0 };
        this.progress('refused', { detail: reason });
        this.transfer = undefined;
        return failure(ErrorKind.UPDATE_REFUSED, reason);
      }
      const handle = await open(this.stagingPath, 'w', 0o600);
      await handle.close();
      await writeFileDurably(this.transferPath, `${JSON.stringify({ sha256: sha, size })}\n`, 0o600);
      this.transfer = { sha256: sha, size, nextOffset: 0 };
      this.progress('begun', { detail: `${size} bytes` });
      return this.stateResult();
    });
  }

  chunk(c: doorbell.v1.IOtaChunk | null | undefined): Promise<Result> {
    const busy = this.busy();
    if (busy) return Promise.resolve(busy);
    const data = c?.data ?? new Uint8Array();
    const offset = Number(c?.offset ?? 0);
    if (!isSha(c?.bundleSha256))
      return Promise.resolve(failure(ErrorKind.INVALID_ARGUMENT, 'bundle_sha256 must be 32 bytes'));
    if (data.length < 1 || data.length > MAX_OTA_CHUNK_BYTES)
      return Promise.resolve(
        failure(ErrorKind.INVALID_ARGUMENT, `a chunk carries 1 to ${MAX_OTA_CHUNK_BYTES} bytes`),
      );
    const sha = hex(c.bundleSha256);
    return this.serial(async () => {
      const t = this.transfer;
      if (!t || t.sha256 !== sha)
        return failure(
          ErrorKind.INVALID_ARGUMENT,
          'no transfer of this bundle is in progress: send OtaBegin',
        );
      if (!Number.isSafeInteger(offset) || offset + data.length > t.size)
        return failure(ErrorKind.INVALID_ARGUMENT, `the chunk ends beyond the bundle's ${t.size} bytes`);
      // Idempotent: a duplicate or out-of-order chunk changes nothing.
      if (offset !== t.nextOffset) return this.stateResult();
      const handle = await open(this.stagingPath, fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW);
      try {
        await handle.write(data, 0, data.length, offset);
      } finally {
        await handle.close();
      }
      t.nextOffset += data.length;
      try {
        if (!t.manifest) await this.checkHeader(t);
      } catch (err) {
        return this.refuse(err);
      }
      if (t.nextOffset === t.size) this.progress('received', { detail: `${t.size} bytes staged` });
      return this.stateResult();
    });
  }

  /** Verifies the signed manifest as soon as it has arrived; throws BundleError. */
  private async checkHeader(t: Transfer): Promise<void> {
    if (t.nextOffset < HEADER_BYTES) return;
    const handle = await open(this.stagingPath, 'r');
    let prefix: Buffer;
    try {
      const head = Buffer.alloc(HEADER_BYTES);
      await handle.read(head, 0, HEADER_BYTES, 0);
      const complete = headerExtent(head);
      const malformed = complete === undefined || complete > t.size;
      if (!malformed && t.nextOffset < complete) return; // wait for the rest of the manifest
      // Malformed: verify what has arrived, which names the problem.
      const len = Math.min(t.nextOffset, complete ?? t.nextOffset);
      prefix = Buffer.alloc(len);
      await handle.read(prefix, 0, len, 0);
    } finally {
      await handle.close();
    }
    const signed = await verifyManifest(bufferSource(prefix), await this.policy(), { headerOnly: true });
    const described = signed.payloadOffset + signed.manifest.files.reduce((n, f) => n + f.size, 0);
    if (described !== t.size) {
      throw new BundleError(
        'corrupt',
        `the manifest describes ${described} bytes; the transfer is ${t.size}`,
      );
    }
    t.manifest = { version: signed.manifest.version, securityCounter: signed.manifest.securityCounter };
    this.progress('verified', { detail: 'signed manifest verified (files not yet)' });
  }

  private async policy(): Promise<TrustPolicy> {
    const state = await readBootState(this.deps.root);
    return {
      keys: this.trust.keys,
      hardware: this.trust.hardware,
      nowMs: Math.max(this.deps.nowMs(), state.committedCreatedAtMs),
      minSecurityCounter: state.committedCounter,
      allowDevelopment: this.trust.allowDevelopment,
    };
  }

  apply(c: doorbell.v1.IOtaApply | null | undefined): Promise<Result> {
    const busy = this.busy();
    if (busy) return Promise.resolve(busy);
    if (!isSha(c?.bundleSha256))
      return Promise.resolve(failure(ErrorKind.INVALID_ARGUMENT, 'bundle_sha256 must be 32 bytes'));
    const sha = hex(c.bundleSha256);
    this.applying = true;
    return this.serial(async () => {
      const t = this.transfer;
      if (!t || t.sha256 !== sha)
        return failure(
          ErrorKind.INVALID_ARGUMENT,
          'no transfer of this bundle is in progress: send OtaBegin',
        );
      if (t.nextOffset !== t.size)
        return failure(ErrorKind.INVALID_ARGUMENT, `only ${t.nextOffset} of ${t.size} bytes have arrived`);
      try {
        const actual = await fileSha256(this.stagingPath);
        if (actual !== t.sha256)
          throw new BundleError('hash-mismatch', 'the staged bundle does not match bundle_sha256');
        let verified = false;
        const { slot, manifest } = await installToInactiveSlot(this.deps.root, this.stagingPath, {
          trust: this.trust,
          nowMs: this.deps.nowMs,
          onProgress: (phase) => {
            if (phase === 'write' && !verified) {
              verified = true;
              this.progress('verified', { detail: 'every file verified; writing the inactive slot' });
            }
          },
        });
        t.manifest = { version: manifest.version, securityCounter: manifest.securityCounter };
        this.progress('written', { detail: `slot ${slot}` });
        const pending: Pending = {
          sha256: t.sha256,
          version: manifest.version,
          securityCounter: manifest.securityCounter,
          slot,
        };
        await writeFileDurably(this.pendingPath, `${JSON.stringify(pending)}\n`, 0o600);
        await switchToTrial(this.deps.root, slot, { trust: this.trust, nowMs: this.deps.nowMs });
        this.progress('switched', { detail: `trial slot ${slot}; restarting` });
        const result = await this.stateResult();
        await this.discard();
        this.restarting = true;
        // After the answer is queued (the caller's then-callbacks run first).
        setImmediate(() => this.deps.requestRestart(`switched to trial slot ${slot}`));
        return result;
      } catch (err) {
        return this.refuse(err);
      }
    }).finally(() => {
      this.applying = false;
    });
  }

  /** The daemon is stopping: a running trial health check ends without a verdict. */
  close(): void {
    this.closed = true;
    this.stopTrial?.();
  }

  getState(): Promise<Result> {
    return this.serial(() => this.stateResult());
  }

  /** A refusal (BundleError, no space) or an internal failure: event, audit, staging discarded. */
  private async refuse(err: unknown): Promise<Result> {
    const refused = err instanceof BundleError || (err instanceof SlotError && err.kind === 'no-space');
    const reason =
      err instanceof BundleError
        ? `${err.kind}: ${stripKind(err.message, err.kind)}`
        : (err as Error).message;
    if (refused) {
      this.deps.logger.warn({ reason }, 'update refused');
      this.progress('refused', { detail: reason });
    } else {
      this.deps.logger.error({ err }, 'update failed');
      this.progress('failed', { detail: reason });
    }
    await this.discard();
    return refused
      ? failure(ErrorKind.UPDATE_REFUSED, `bundle refused, nothing was written: ${reason}`)
      : failure(ErrorKind.INTERNAL, `update failed: ${reason}`);
  }

  private async discard(): Promise<void> {
    this.transfer = undefined;
    await rm(this.stagingPath, { force: true });
    await rm(this.transferPath, { force: true });
  }

  private async stateResult(): Promise<Result> {
    const { root } = this.deps;
    const state = await readBootState(root);
    const running = await currentSlot(root);
    const t = this.transfer;
    return {
      ok: true,
      otaState: {
        bundleSha256: t ? Buffer.from(t.sha256, 'hex') : new Uint8Array(),
        nextOffset: t?.nextOffset ?? 0,
        bundleSize: t?.size ?? 0,
        runningVersion: running ? ((await slotManifest(root, running))?.version ?? '') : '',
        committedVersion: state.committed ? ((await slotManifest(root, state.committed))?.version ?? '') : '',
        committedSecurityCounter: state.committedCounter,
        runningSlot: running ?? '',
        trialSlot: state.trial ?? '',
      },
    };
  }

  /** Emits a signed OtaProgress event and appends an audit entry. */
  private progress(
    stage: OtaStage,
    extra: { detail?: string; sha256?: string; version?: string; securityCounter?: number } = {},
  ): void {
    const t = this.transfer;
    const sha256 = extra.sha256 ?? t?.sha256 ?? '';
    const version = extra.version ?? t?.manifest?.version ?? '';
    const securityCounter = extra.securityCounter ?? t?.manifest?.securityCounter ?? 0;
    const detail = (extra.detail ?? '').slice(0, 200);
    this.deps.emit({
      otaProgress: {
        stage,
        bundleSha256: Buffer.from(sha256, 'hex'),
        version,
        securityCounter,
        detail,
        nextOffset: t?.nextOffset ?? 0,
      },
    });
    this.deps.logger.info({ stage, version, securityCounter, detail }, `update ${stage}`);
    this.deps.audit
      .append(`ota.${stage}`, { sha256, version, securityCounter, detail, nextOffset: t?.nextOffset ?? 0 })
      .catch((err: unknown) => this.deps.logger.error({ err }, 'audit log append failed'));
  }

  /**
   * Run once after start. On a trial slot: health check (connected, and a
   * signed self-test event acknowledged by the broker, within the timeout),
   * then commit; otherwise roll back and ask for a restart. On a committed
   * slot with an update pending: report what became of it.
   */
  async checkTrial(probe: HealthProbe): Promise<'committed' | 'rolled-back' | 'none'> {
    const { root, logger } = this.deps;
    const pending = await this.readPending();
    const state = await readBootState(root);
    const running = await currentSlot(root);
    const about = {
      sha256: pending?.sha256 ?? '',
      version: pending?.version ?? '',
      securityCounter: pending?.securityCounter ?? 0,
    };
    if (state.trial && state.trial === running) {
      const manifest = await slotManifest(root, running);
      const info = {
        ...about,
        version: manifest?.version ?? about.version,
        securityCounter: manifest?.securityCounter ?? about.securityCounter,
      };
      const timeoutMs = this.deps.trialHealthTimeoutMs ?? DEFAULT_TRIAL_HEALTH_TIMEOUT_MS;
      let timer: NodeJS.Timeout | undefined;
      let expired = false;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          expired = true;
          reject(new Error(`no broker acknowledgement within ${timeoutMs} ms`));
        }, timeoutMs);
      });
      this.stopTrial = () => clearTimeout(timer);
      const selfTest = async (): Promise<void> => {
        // A publish that fails (the connection dropped) is tried again until the deadline.
        for (;;) {
          await probe.connected();
          try {
            await probe.publishAcked(
              this.progressBody('self-test', {
                ...info,
                detail: `trial slot ${running}, attempt ${state.trialAttempts}`,
              }),
            );
            return;
          } catch (err) {
            if (expired || this.closed) throw err;
            logger.warn({ err: String(err) }, 'self-test event not acknowledged; trying again');
            await new Promise((r) => setTimeout(r, 250));
          }
        }
      };
      try {
        await Promise.race([selfTest(), deadline]);
        clearTimeout(timer);
        if (this.closed) return 'none';
        void this.deps.audit
          .append('ota.self-test', { ...info, detail: `trial slot ${running}` })
          .catch(() => undefined);
        await commit(root, { trust: this.trust, nowMs: this.deps.nowMs });
        this.progress('committed', { ...info, detail: `slot ${running} committed` });
        await rm(this.pendingPath, { force: true });
        return 'committed';
      } catch (err) {
        clearTimeout(timer);
        if (this.closed) {
          // Stopped during the check: no verdict; the next boot is another attempt.
          logger.warn('stopped during the trial health check; the next start tries again');
          return 'none';
        }
        const reason = `health check failed: ${(err as Error).message}`;
        logger.error({ reason }, 'trial firmware failed its health check: rolling back');
        const back = await rollback(root, { trust: this.trust, nowMs: this.deps.nowMs });
        this.progress('rolled-back', { ...info, detail: `${reason}; slot ${back ?? '?'} boots next` });
        await rm(this.pendingPath, { force: true });
        this.restarting = true;
        this.deps.requestRestart('trial rolled back');
        return 'rolled-back';
      }
    }
    if (!pending) return 'none';
    if (state.committed === pending.slot && !state.trial) {
      const manifest = await slotManifest(root, pending.slot);
      if (manifest?.version === pending.version && manifest.securityCounter === pending.securityCounter) {
        this.progress('committed', { ...about, detail: `slot ${pending.slot} committed` });
        await rm(this.pendingPath, { force: true });
        return 'committed';
      }
    }
    this.progress('rolled-back', {
      ...about,
      detail: `the trial in slot ${pending.slot} never passed its health check; slot ${running ?? '?'} runs`,
    });
    await rm(this.pendingPath, { force: true });
    return 'rolled-back';
  }

  private progressBody(
    stage: OtaStage,
    x: { sha256: string; version: string; securityCounter: number; detail: string },
  ): EventBody {
    return {
      otaProgress: {
        stage,
        bundleSha256: Buffer.from(x.sha256, 'hex'),
        version: x.version,
        securityCounter: x.securityCounter,
        detail: x.detail,
        nextOffset: 0,
      },
    };
  }

  private async readPending(): Promise<Pending | undefined> {
    try {
      const p = JSON.parse(await readFile(this.pendingPath, 'utf8')) as Partial<Pending>;
      if (
        typeof p.sha256 === 'string' &&
        /^[0-9a-f]{64}$/.test(p.sha256) &&
        typeof p.version === 'string' &&
        Number.isSafeInteger(p.securityCounter) &&
        (p.slot === 'a' || p.slot === 'b')
      )
        return p as Pending;
    } catch {
      // absent or unreadable: nothing pending
    }
    return undefined;
  }
}

function stripKind(message: string, kind: string): string {
  return message.startsWith(`${kind}: `) ? message.slice(kind.length + 2) : message;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'r');
  try {
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
  } finally {
    await handle.close().catch(() => undefined);
  }
  return hash.digest('hex');
}

/** A slot's signed manifest (signature checked, files not hashed), or undefined. */
async function slotManifest(root: string, slot: SlotName): Promise<Manifest | undefined> {
  try {
    const stored = await readFile(join(slotDir(root, slot), SLOT_MANIFEST_FILE));
    if (stored.length > HEADER_BYTES + MAX_MANIFEST_BYTES) return undefined;
    const trust = await loadBoardTrust(root, true);
    const signed = await verifyManifest(
      bufferSource(stored),
      { keys: trust.keys, hardware: trust.hardware, nowMs: 0, minSecurityCounter: 0, allowDevelopment: true },
      { headerOnly: true },
    );
    return signed.manifest;
  } catch {
    return undefined;
  }
}
