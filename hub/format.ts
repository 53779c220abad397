import { doorbell } from '../proto/index.js';
import { ROLE_NAMES } from '../proto/roles.js';
import type { VerifiedEvent } from './event-watcher.js';

const time = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

/** An event that arrives this long after it was issued waited somewhere: show both times. */
const QUEUED_AFTER_MS = 2_000;

function formatDelay(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7_200) return `${Math.round(s / 60)} min`;
  return `${(s / 3_600).toFixed(1)} h`;
}

/** One line per verified event, for people. */
export function describeEvent(e: VerifiedEvent): string {
  const ev = e.event;
  // When it happened (the device's signed issued-at), and, for one that waited in a queue
  // (the device's outbox, the broker's session), when it arrived.
  const late = e.receivedAtMs - e.issuedAtMs;
  const sameDay =
    new Date(e.issuedAtMs).toISOString().slice(0, 10) === new Date(e.receivedAtMs).toISOString().slice(0, 10);
  const issued = sameDay
    ? time(e.issuedAtMs)
    : new Date(e.issuedAtMs).toISOString().replace('T', ' ').slice(0, 23);
  const queued =
    late > QUEUED_AFTER_MS ? ` [queued: arrived ${time(e.receivedAtMs)}, ${formatDelay(late)} later]` : '';
  const head = `${issued}${queued} ${e.deviceId}`;
  switch (ev.kind) {
    case 'buttonPressed': {
      const p = ev.buttonPressed;
      const lag = e.receivedAtMs - Number(p?.pressedAtMs ?? e.issuedAtMs);
      const snapshot = p?.snapshotId ? `, snapshot ${p.snapshotId}` : '';
      return `${head} button pressed #${p?.pressSeq} (verified, ${lag} ms after the press${snapshot})`;
    }
    case 'chimeRang': {
      const c = ev.chimeRang;
      return c?.rang
        ? `${head} chime rang (${c.mode}, ${(Number(c.pressToChimeUs) / 1000).toFixed(3)} ms after the press was recognised)`
        : `${head} chime did not ring: ${c?.skippedReason || 'unknown'}`;
    }
    case 'status': {
      const s = ev.status;
      const state = doorbell.v1.Status.State[s?.state ?? 0] ?? 'UNKNOWN';
      return `${head} status ${state} (firmware ${s?.firmwareVersion}, up ${s?.uptimeS} s, hal ${s?.halBackend}, outbox ${s?.outboxDepth})`;
    }
    case 'commandResult': {
      const r = ev.commandResult;
      return r?.ok
        ? `${head} command ${e.correlationId.slice(0, 8)} ok`
        : `${head} command ${e.correlationId.slice(0, 8)} failed: ${doorbell.v1.ErrorKind[r?.errorKind ?? 0]} ${r?.errorMessage}`;
    }
    case 'pairingRequested':
      return `${head} pairing requested (button held)`;
    case 'eventsDropped': {
      const d = ev.eventsDropped;
      return `${head} outbox full: ${d?.count} events dropped undelivered (oldest counter ${d?.oldestDroppedCounter})`;
    }
    case 'pairingWindow': {
      const w = ev.pairingWindow;
      return w?.open
        ? `${head} pairing window open until ${time(Number(w.closesAtMs))} (${w.reason})`
        : `${head} pairing window closed (${w?.reason}, ${w?.failures ?? 0} failed attempts)`;
    }
    case 'keysChanged': {
      const k = ev.keysChanged;
      const about = k?.keyId ? ` key ${k.keyId}` : '';
      const role = k?.role ? ` as ${ROLE_NAMES[k.role - 1] ?? `role ${k.role}`}` : '';
      return `${head} keys changed: ${k?.change}${about}${role} by ${k?.byKeyId} (key epoch ${k?.keyEpoch})`;
    }
    case 'otaProgress': {
      const o = ev.otaProgress;
      const what = o?.version ? ` ${o.version} (security counter ${o.securityCounter})` : '';
      return `${head} update ${o?.stage}${what}${o?.detail ? `: ${o.detail}` : ''}`;
    }
    case 'motionStarted': {
      const m = ev.motionStarted;
      return `${head} motion in ${m?.zone} (${Math.round((m?.area ?? 0) * 100)} % of the zone)`;
    }
    case 'motionEnded':
      return `${head} motion in ${ev.motionEnded?.zone} ended after ${Number(ev.motionEnded?.durationMs ?? 0) / 1000} s`;
    case 'clipRecorded': {
      const c = ev.clipRecorded;
      const seconds = (Number(c?.endMs ?? 0) - Number(c?.startMs ?? 0)) / 1000;
      return `${head} clip ${c?.clipId} recorded (${c?.reasons?.join('+') || c?.reason}, ${seconds.toFixed(1)} s, ${c?.bytes} bytes encrypted${c?.truncated ? ', truncated' : ''})`;
    }
    case 'mediaHealth': {
      const h = ev.mediaHealth;
      return `${head} camera: ${h?.state}${h?.detail ? ` (${h.detail})` : ''}`;
    }
    case 'storageAlert': {
      const a = ev.storageAlert;
      return `${head} storage: ${a?.kind}${a?.itemId ? ` ${a.itemId}` : ''}${a?.items ? `, ${a.items} items (${a.bytes} bytes) evicted` : ''}${a?.detail ? ` (${a.detail})` : ''}`;
    }
    case 'auditCheckpoint': {
      const lines = ev.auditCheckpoint?.note?.split('\n') ?? [];
      const ended = lines.find((l) => l.startsWith('ended: '));
      return `${head} audit log signed at ${lines[1] ?? '?'} entries${ended ? ` (${ended}: the doorbell wiped its state)` : ''}`;
    }
    case 'itemChunk': {
      const c = ev.itemChunk;
      return `${head} ${c?.data?.length ?? 0} bytes of ${c?.itemId} at ${c?.offset}`;
    }
    case undefined:
      return `${head} event without a kind`;
    default: {
      const unknown: never = ev.kind;
      return `${head} event ${String(unknown)}`;
    }
  }
}

/** One JSON object per verified event, for scripts. */
export function eventToJson(e: VerifiedEvent): Record<string, unknown> {
  return {
    deviceId: e.deviceId,
    channel: e.channel,
    kind: e.event.kind,
    counter: e.counter,
    correlationId: e.correlationId,
    issuedAtMs: e.issuedAtMs,
    receivedAtMs: e.receivedAtMs,
    retained: e.retained,
    body: e.event.kind
      ? doorbell.v1.Event.toObject(e.event, { enums: String, defaults: true })[e.event.kind]
      : null,
  };
}
