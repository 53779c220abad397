import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBoardTrust } from '../../board/board-files.js';
import {
  bufferSource,
  HEADER_BYTES,
  MAX_MANIFEST_BYTES,
  type Manifest,
  verifyManifest,
} from '../../board/manifest.js';
import {
  type BoardTrust,
  commit,
  currentSlot,
  readBootState,
  rollback,
  SLOT_MANIFEST_FILE,
  type SlotName,
  slotDir,
} from '../../board/slots.js';
import { type Clock, systemClock, type TimerHandle } from '../../common/clock.js';
import { writeFileDurably } from '../../common/durable-file.js';
import type { Logger } from '../../common/logger.js';
import type { AuditLog } from '../audit-log.js';
import type { EventBody } from '../services/event-signer.js';
import { type ProgressInfo, type ProgressReporter, progressBody } from './progress.js';

export const DEFAULT_TRIAL_HEALTH_TIMEOUT_MS = 60_000;
/** Between two self-test publishes that failed (the connection dropped). */
const SELF_TEST_RETRY_MS = 250;

/** How the trial's health check reaches the broker. */
export interface HealthProbe {
  /** Resolves once the MQTT connection is up. */
  connected(): Promise<void>;
  /** Signs and publishes an event directly at QoS 1; resolves on the broker's PUBACK. */
  publishAcked(body: EventBody): Promise<void>;
}

/** The update switched to and not yet judged: `<stateDir>/ota/pending.json`. */
export interface Pending {
  sha256: string;
  version: string;
  securityCounter: number;
  slot: SlotName;
}

export type TrialOutcome = 'committed' | 'rolled-back' | 'none';

export interface TrialDeps {
  root: string;
  trust: BoardTrust;
  /** `<stateDir>/ota/`, where pending.json lives. */
  dir: string;
  logger: Logger;
  nowMs: () => number;
  audit: AuditLog;
  progress: ProgressReporter;
  timeoutMs?: number;
  clock?: Clock;
  /** True once the daemon is stopping: a check under way ends without a verdict. */
  closed: () => boolean;
  /** Receives the function that ends a check under way (called by close). */
  onStoppable: (stop: () => void) => void;
  /** After a rollback: stop cleanly and exit RESTART_EXIT_CODE. */
  restart: (reason: string) => void;
}

const pendingPath = (dir: string): string => join(dir, 'pending.json');

/** Records the update being switched to, before the switch. */
export async function writePending(dir: string, pending: Pending): Promise<void> {
  await writeFileDurably(pendingPath(dir), `${JSON.stringify(pending)}\n`, 0o600);
}

/**
 * Run once after start. On a trial slot: health check (connected, and a
 * signed self-test event acknowledged by the broker, within the timeout),
 * then commit; otherwise roll back and ask for a restart. On a committed
 * slot with an update pending: report what became of it.
 */
export async function checkTrial(deps: TrialDeps, probe: HealthProbe): Promise<TrialOutcome> {
  const { root, logger, dir } = deps;
  const pending = await readPending(dir);
  const state = await readBootState(root);
  const running = await currentSlot(root);
  const about = {
    sha256: pending?.sha256 ?? '',
    version: pending?.version ?? '',
    securityCounter: pending?.securityCounter ?? 0,
  };
  const report = (stage: 'committed' | 'rolled-back', detail: string, info = about): void =>
    deps.progress.report(stage, { ...info, detail, nextOffset: 0 });

  if (state.trial && state.trial === running) {
    const manifest = await slotManifest(root, running);
    const info = {
      ...about,
      version: manifest?.version ?? about.version,
      securityCounter: manifest?.securityCounter ?? about.securityCounter,
    };
    const detail = `trial slot ${running}, attempt ${state.trialAttempts}`;
    try {
      await selfTest(deps, probe, { ...info, detail, nextOffset: 0 });
      if (deps.closed()) return 'none';
      void deps.audit
        .append('ota.self-test', { ...info, detail: `trial slot ${running}` })
        .catch(() => undefined);
      await commit(root, { trust: deps.trust, nowMs: deps.nowMs });
      report('committed', `slot ${running} committed`, info);
      await rm(pendingPath(dir), { force: true });
      return 'committed';
    } catch (err) {
      if (deps.closed()) {
        // Stopped during the check: no verdict; the next boot is another attempt.
        logger.warn('stopped during the trial health check; the next start tries again');
        return 'none';
      }
      const reason = `health check failed: ${(err as Error).message}`;
      logger.error({ reason }, 'trial firmware failed its health check: rolling back');
      const back = await rollback(root, { trust: deps.trust, nowMs: deps.nowMs });
      report('rolled-back', `${reason}; slot ${back ?? '?'} boots next`, info);
      await rm(pendingPath(dir), { force: true });
      deps.restart('trial rolled back');
      return 'rolled-back';
    }
  }
  if (!pending) return 'none';
  if (state.committed === pending.slot && !state.trial) {
    const manifest = await slotManifest(root, pending.slot);
    if (manifest?.version === pending.version && manifest.securityCounter === pending.securityCounter) {
      report('committed', `slot ${pending.slot} committed`);
      await rm(pendingPath(dir), { force: true });
      return 'committed';
    }
  }
  report(
    'rolled-back',
    `the trial in slot ${pending.slot} never passed its health check; slot ${running ?? '?'} runs`,
  );
  await rm(pendingPath(dir), { force: true });
  return 'rolled-back';
}

/** Publishes the signed self-test event until the broker acknowledges it; rejects at the deadline. */
async function selfTest(deps: TrialDeps, probe: HealthProbe, info: ProgressInfo): Promise<void> {
  const clock = deps.clock ?? systemClock;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TRIAL_HEALTH_TIMEOUT_MS;
  let timer: TimerHandle | undefined;
  let expired = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => {
      expired = true;
      reject(new Error(`no broker acknowledgement within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  deps.onStoppable(() => {
    if (timer) clock.clearTimeout(timer);
  });
  const attempt = async (): Promise<void> => {
    // A publish that fails (the connection dropped) is tried again until the deadline.
    for (;;) {
      await probe.connected();
      try {
        await probe.publishAcked(progressBody('self-test', info));
        return;
      } catch (err) {
        if (expired || deps.closed()) throw err;
        deps.logger.warn({ err: String(err) }, 'self-test event not acknowledged; trying again');
        await new Promise<void>((r) => clock.setTimeout(r, SELF_TEST_RETRY_MS));
      }
    }
  };
  try {
    await Promise.race([attempt(), deadline]);
  } finally {
    if (timer) clock.clearTimeout(timer);
  }
}

async function readPending(dir: string): Promise<Pending | undefined> {
  try {
    const p = JSON.parse(await readFile(pendingPath(dir), 'utf8')) as Partial<Pending>;
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

/** A slot's signed manifest (signature checked, files not hashed), or undefined. */
export async function slotManifest(root: string, slot: SlotName): Promise<Manifest | undefined> {
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
