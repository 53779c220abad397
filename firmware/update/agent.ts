import { join } from 'node:path';
import { loadBoardTrust } from '../../board/board-files.js';
import {
  BundleError,
  bufferSource,
  HEADER_BYTES,
  type TrustPolicy,
  verifyManifest,
} from '../../board/manifest.js';
import {
  type BoardTrust,
  currentSlot,
  FREE_SPACE_MARGIN_BYTES,
  freeBytes,
  installToInactiveSlot,
  readBootState,
  SlotError,
  switchToTrial,
} from '../../board/slots.js';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import { failure } from '../../proto/command-result.js';
import { doorbell } from '../../proto/index.js';
import type { AuditLog } from '../audit-log.js';
import type { EventBody } from '../services/event-signer.js';
import { type OtaStage, ProgressReporter } from './progress.js';
import { StagingArea, type Transfer } from './staging.js';
import { checkTrial, type HealthProbe, slotManifest, type TrialOutcome, writePending } from './trial.js';

export type { OtaStage } from './progress.js';
export { DEFAULT_TRIAL_HEALTH_TIMEOUT_MS, type HealthProbe } from './trial.js';

/** Largest OtaChunk.data: the signed envelope is capped at 16 KiB. */
export const MAX_OTA_CHUNK_BYTES = 12 * 1024;
export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
/** The exit status that tells systemd (Restart=on-failure) to start the daemon again. */
export const RESTART_EXIT_CODE = 75;

const { ErrorKind } = doorbell.v1;
type Result = doorbell.v1.ICommandResult;

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
  /** The trial's deadline and retries; default the system clock. */
  clock?: Clock;
}

const hex = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? []).toString('hex');
const isSha = (b: Uint8Array | null | undefined): b is Uint8Array => b != null && b.length === 32;

/**
 * The device side of updates over MQTT (docs/flashing.md, "Updates over
 * MQTT"): stages a bundle chunk by chunk (staging.ts: resumable and
 * idempotent), verifies its signed manifest as soon as it has arrived,
 * installs it into the inactive slot with `installToInactiveSlot` (which
 * verifies everything before writing), switches to it as a trial and asks
 * for a restart; after the restart `checkTrial` (trial.ts) commits it once
 * the broker acknowledged a signed self-test event, or rolls it back. Every
 * step is reported (progress.ts: a signed OtaProgress event and an audit log
 * entry). Operations are serialised; while an apply runs, other transfer
 * commands answer BUSY.
 */
export class UpdateAgent {
  private transfer: Transfer | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private applying = false;
  private restarting = false;
  private closed = false;
  private stopTrial: (() => void) | undefined;
  private readonly staging: StagingArea;
  private readonly reporter: ProgressReporter;
  private readonly maxBundleBytes: number;

  private constructor(
    private readonly deps: UpdateAgentDeps,
    private readonly trust: BoardTrust,
  ) {
    this.maxBundleBytes = deps.maxBundleBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
    this.staging = new StagingArea(join(deps.stateDir, 'ota'), this.maxBundleBytes);
    this.reporter = new ProgressReporter(deps);
  }

  /** Loads the board's trust (release keys, hardware) and any staged transfer. */
  static async open(deps: UpdateAgentDeps): Promise<UpdateAgent> {
    const trust = await loadBoardTrust(deps.root);
    const agent = new UpdateAgent(deps, trust);
    agent.transfer = await agent.staging.load();
    return agent;
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
        this.progress('begun', `resumed at ${t.nextOffset}`);
        return this.stateResult();
      }
      await this.discard();
      const free = await freeBytes(this.deps.stateDir);
      if (free < size + FREE_SPACE_MARGIN_BYTES) {
        const reason = `no-space: ${free} bytes free; staging needs ${size + FREE_SPACE_MARGIN_BYTES}`;
        this.transfer = { sha256: sha, size, nextOffset: 0 };
        this.progress('refused', reason);
        this.transfer = undefined;
        return failure(ErrorKind.UPDATE_REFUSED, reason);
      }
      this.transfer = await this.staging.create(sha, size);
      this.progress('begun', `${size} bytes`);
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
      await this.staging.append(t, data);
      try {
        if (!t.manifest) await this.checkHeader(t);
      } catch (err) {
        return this.refuse(err);
      }
      if (t.nextOffset === t.size) this.progress('received', `${t.size} bytes staged`);
      return this.stateResult();
    });
  }

  /** Verifies the signed manifest as soon as it has arrived; throws BundleError. */
  private async checkHeader(t: Transfer): Promise<void> {
    const header = await this.staging.headerToVerify(t);
    if (header === undefined) return;
    const signed = await verifyManifest(bufferSource(header), await this.policy(), { headerOnly: true });
    const described = signed.payloadOffset + signed.manifest.files.reduce((n, f) => n + f.size, 0);
    if (described !== t.size) {
      throw new BundleError(
        'corrupt',
        `the manifest describes ${described} bytes; the transfer is ${t.size}`,
      );
    }
    t.manifest = { version: signed.manifest.version, securityCounter: signed.manifest.securityCounter };
    this.progress('verified', 'signed manifest verified (files not yet)');
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
        if ((await this.staging.sha256()) !== t.sha256)
          throw new BundleError('hash-mismatch', 'the staged bundle does not match bundle_sha256');
        let verified = false;
        const { slot, manifest } = await installToInactiveSlot(this.deps.root, this.staging.bundlePath, {
          trust: this.trust,
          nowMs: this.deps.nowMs,
          onProgress: (phase) => {
            if (phase === 'write' && !verified) {
              verified = true;
              this.progress('verified', 'every file verified; writing the inactive slot');
            }
          },
        });
        t.manifest = { version: manifest.version, securityCounter: manifest.securityCounter };
        this.progress('written', `slot ${slot}`);
        await writePending(this.staging.dir, {
          sha256: t.sha256,
          version: manifest.version,
          securityCounter: manifest.securityCounter,
          slot,
        });
        await switchToTrial(this.deps.root, slot, { trust: this.trust, nowMs: this.deps.nowMs });
        this.progress('switched', `trial slot ${slot}; restarting`);
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

  /** After start: judges a trial slot, or reports what became of a pending update (trial.ts). */
  checkTrial(probe: HealthProbe): Promise<TrialOutcome> {
    return checkTrial(
      {
        root: this.deps.root,
        trust: this.trust,
        dir: this.staging.dir,
        logger: this.deps.logger,
        nowMs: this.deps.nowMs,
        audit: this.deps.audit,
        progress: this.reporter,
        ...(this.deps.trialHealthTimeoutMs !== undefined
          ? { timeoutMs: this.deps.trialHealthTimeoutMs }
          : {}),
        ...(this.deps.clock ? { clock: this.deps.clock } : {}),
        closed: () => this.closed,
        onStoppable: (stop) => {
          this.stopTrial = stop;
        },
        restart: (reason) => {
          this.restarting = true;
          this.deps.requestRestart(reason);
        },
      },
      probe,
    );
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
      this.progress('refused', reason);
    } else {
      this.deps.logger.error({ err }, 'update failed');
      this.progress('failed', reason);
    }
    await this.discard();
    return refused
      ? failure(ErrorKind.UPDATE_REFUSED, `bundle refused, nothing was written: ${reason}`)
      : failure(ErrorKind.INTERNAL, `update failed: ${reason}`);
  }

  private async discard(): Promise<void> {
    this.transfer = undefined;
    await this.staging.discard();
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

  /** Reports a step of the transfer under way. */
  private progress(stage: OtaStage, detail: string): void {
    const t = this.transfer;
    this.reporter.report(stage, {
      sha256: t?.sha256 ?? '',
      version: t?.manifest?.version ?? '',
      securityCounter: t?.manifest?.securityCounter ?? 0,
      detail,
      nextOffset: t?.nextOffset ?? 0,
    });
  }
}

function stripKind(message: string, kind: string): string {
  return message.startsWith(`${kind}: `) ? message.slice(kind.length + 2) : message;
}
