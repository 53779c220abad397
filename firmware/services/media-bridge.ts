import { join } from 'node:path';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import { MotionAnalyser } from '../../media/motion/analyser.js';
import { MotionDetector } from '../../media/motion/detector.js';
import { type MediaHealth, MediaService } from '../../media/service.js';
import { ClipStore, StoreError, type StoreEvent } from '../../media/store/clip-store.js';
import type { DoorbellConfig } from '../config/schema.js';
import { AfterPressQueue } from './after-press.js';
import type { EventBody } from './event-signer.js';
import type { FootageStore } from './footage-service.js';

export interface MediaBridge {
  /**
   * Called in the press path, after the chime: starts (or extends) a clip
   * and names the snapshot that will be stored for this press. Synchronous,
   * cheap, never throws.
   */
  onPress(atMs: number): { snapshotId?: string };
  /** The sim board's light in front of the camera (a rig's lamp); a real camera ignores it. */
  setLight(on: boolean): void;
  /** The media worker's pid while it runs (for fault tests). */
  readonly workerPid: number | undefined;
  /** The encrypted store, for listing and fetching (footage-service.ts). */
  readonly store: FootageStore;
  stop(): Promise<void>;
}

/** Health changes worth a signed event (the rest are only logged). */
const REPORTED: ReadonlySet<MediaHealth['type']> = new Set([
  'pipeline-up',
  'preroll-ready',
  'pipeline-down',
  'camera-error',
  'pipeline-error',
  'config-error',
  'restart-scheduled',
]);

/**
 * Connects the media half (media/) to the control plane: the encrypted clip
 * store with the owner's recipients (config plus those enrolled by
 * pairing), the motion detector on the grayscale branch, and the supervised
 * media worker. Everything it reports becomes a signed event through `emit`.
 * Nothing here is awaited by the ring path, and a camera that fails to start
 * is reported and retried by the supervisor, never fatal to the daemon.
 */
export async function startMediaBridge(
  config: DoorbellConfig,
  deps: {
    recipients: () => readonly string[];
    emit: (body: EventBody) => void;
    logger: Logger;
    nowMs: () => number;
    /** The supervisor's and the after-press timers; default the system clock. */
    clock?: Clock;
    /** An audit log entry (firmware/audit-log.ts): items stored and evicted. */
    audit?: (event: string, data: Record<string, string | number | boolean>) => void;
  },
): Promise<MediaBridge> {
  const { emit, logger, nowMs } = deps;
  const store = new ClipStore({
    config: config.media.store,
    dir: join(config.stateDir, 'clips'),
    logger: logger.child({ module: 'clips' }),
    recipients: deps.recipients,
    now: nowMs,
  });
  store.onEvent((e) => {
    reportStore(e, emit);
    if (e.type === 'stored') {
      // Not its trigger: the log is plaintext on the card (docs/security.md, "What the card shows").
      const { id, bytes, sha256 } = e.item;
      deps.audit?.(`${e.kind}.created`, { id, bytes, sha256 });
    } else if (e.type === 'evicted') {
      for (const item of e.items)
        deps.audit?.('item.evicted', { id: item.id, bytes: item.bytes, why: item.why });
    }
  });
  await store.start();

  let media: MediaService | undefined;
  const analyser = new MotionAnalyser(
    new MotionDetector(config.media.motion, logger.child({ module: 'motion' })),
    (e) => {
      if (e.type === 'motion-start') {
        emit({ motionStarted: { zone: e.zone, atMs: Math.round(e.atMs), area: e.area } });
        if (config.media.recordMotion) media?.trigger('motion', Math.round(e.atMs));
      } else {
        emit({
          motionEnded: { zone: e.zone, atMs: Math.round(e.atMs), durationMs: Math.round(e.durationMs) },
        });
      }
    },
    logger.child({ module: 'motion' }),
  );
  media = new MediaService({
    config: config.media.camera,
    sink: store,
    analyser,
    logger: logger.child({ module: 'media' }),
    now: nowMs,
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  let workerPid: number | undefined;
  media.on('health', (h) => {
    if (h.type === 'worker-started') workerPid = h.pid;
    if (h.type === 'worker-exit') workerPid = undefined;
    if (!REPORTED.has(h.type)) return;
    emit({
      mediaHealth: {
        state: h.type,
        detail: 'message' in h ? h.message : 'reason' in h ? h.reason : '',
        attempt: 'attempt' in h ? h.attempt : 0,
      },
    });
  });
  media.on('clip-finished', (c) => {
    emit({
      clipRecorded: {
        clipId: c.id,
        reason: c.reason,
        reasons: c.reasons,
        triggerMs: c.triggerMs,
        startMs: c.startMs,
        endMs: c.endMs,
        bytes: c.bytes,
        sha256: c.sha256,
        truncated: c.truncated,
      },
    });
  });
  media.on('clip-failed', (c) => {
    emit({ mediaHealth: { state: 'clip-failed', detail: c.error.slice(0, 200) } });
  });
  // The first start checks the configuration (elements, encoder, caps); a
  // failure there is reported and the doorbell rings on without a camera.
  const running = media.start().catch((err: unknown) => {
    logger.error({ err }, 'the camera could not start; the doorbell rings on without it');
    emit({ mediaHealth: { state: 'config-error', detail: (err as Error).message.slice(0, 200) } });
  });

  // Snapshot writes wait until the press event is on its way; stop() starts
  // the waiting ones at once, while the store is open (its stop lets every
  // write under way end first).
  const afterPress = new AfterPressQueue(deps.clock);
  const writeSnapshot = (bytes: Uint8Array, tsMs: number, id: string): void => {
    store.writeSnapshot(bytes, tsMs, id).catch((err: unknown) => {
      // The store already emitted write-failed; a StoreError needs no second log line.
      if (!(err instanceof StoreError)) logger.error({ err }, 'snapshot not stored');
    });
  };

  return {
    setLight(on) {
      media?.setLight(on);
    },
    onPress(atMs) {
      try {
        media?.trigger('press', atMs);
        const snapshot = media?.latestSnapshot();
        if (snapshot === undefined || atMs - snapshot.tsMs > 1000) return {};
        const id = store.reserveId();
        // Encrypting starts with an X25519 operation: not while the press event is in flight.
        afterPress.add(() => writeSnapshot(snapshot.bytes, snapshot.tsMs, id));
        return { snapshotId: id };
      } catch (err) {
        logger.error({ err }, 'media press hook failed');
        return {};
      }
    },
    get workerPid() {
      return workerPid;
    },
    store,
    async stop() {
      afterPress.flush();
      await running;
      await media?.stop();
      await store.stop();
    },
  };
}

function reportStore(e: StoreEvent, emit: (body: EventBody) => void): void {
  switch (e.type) {
    case 'stored':
    case 'index-rebuilt':
      return;
    case 'evicted':
      emit({ storageAlert: { kind: 'evicted', items: e.items.length, bytes: e.bytes } });
      return;
    case 'storage-full':
      emit({ storageAlert: { kind: 'storage-full', itemId: e.id, detail: e.code } });
      return;
    case 'write-failed':
      emit({
        storageAlert: {
          kind: e.kind === 'no-recipients' ? 'no-recipients' : 'write-failed',
          itemId: e.id,
          detail: e.message.slice(0, 200),
        },
      });
      return;
  }
}
