/**
 * Shared fixtures for the proto tests: one device, one hub key, valid headers
 * and one sample body of every event and command kind. Not used by shipped code.
 */
import { newCorrelationId } from './correlation.js';
import { doorbell } from './gen/doorbell.js';
import type { HeaderInit } from './header.js';
import { generateSigningKey, type SigningKey, type VerifyKey, verifyKeyOf } from './keys.js';
import { topicsFor } from './topics.js';
import type { VerifyContext } from './verify.js';

export const DEVICE = 'front-door';
export const TOPICS = topicsFor(DEVICE);
/** A fixed clock: tests never read the wall clock. */
export const NOW_MS = 1_750_000_000_000;

export const HUB_KEY: SigningKey = generateSigningKey();
export const DEVICE_KEY: SigningKey = generateSigningKey();

export function keyMap(...keys: VerifyKey[]): ReadonlyMap<string, VerifyKey> {
  return new Map(keys.map((k) => [k.keyId, verifyKeyOf(k)]));
}

export function header(topic: string, overrides: Partial<HeaderInit> = {}): HeaderInit {
  return {
    deviceId: DEVICE,
    topic,
    counter: 7,
    issuedAtMs: NOW_MS - 1000,
    expiresAtMs: NOW_MS + 30_000,
    correlationId: newCorrelationId(),
    keyEpoch: 2,
    ...overrides,
  };
}

export function commandCtx(overrides: Partial<VerifyContext> = {}): VerifyContext {
  return { deviceId: DEVICE, topic: TOPICS.cmd, nowMs: NOW_MS, keys: keyMap(HUB_KEY), ...overrides };
}

export function eventCtx(overrides: Partial<VerifyContext> = {}): VerifyContext {
  return { deviceId: DEVICE, topic: TOPICS.evt, nowMs: NOW_MS, keys: keyMap(DEVICE_KEY), ...overrides };
}

const status: doorbell.v1.IStatus = {
  state: doorbell.v1.Status.State.ONLINE,
  firmwareVersion: '0.1.0',
  uptimeS: 86_400 * 400,
  halBackend: 'sim',
  chimeMode: 'mechanical',
  pressesSinceBoot: 42,
  outboxDepth: 3,
};

/** One body of every Event kind (keyed by the oneof member name). */
export const EVENT_BODIES: { readonly [K in NonNullable<doorbell.v1.Event['kind']>]: doorbell.v1.IEvent } = {
  buttonPressed: {
    buttonPressed: { pressedAtMs: NOW_MS - 5, pressSeq: 3, snapshotId: '1750000000000-0123456789ab' },
  },
  auditCheckpoint: {
    auditCheckpoint: { note: 'open-doorbell/front-door/0123456789abcdef/audit\n3\nAAAA\n\n\u2014 x AAAA\n' },
  },
  itemChunk: {
    itemChunk: { itemId: '1750000000000-0123456789ab', offset: 12_288, data: Buffer.alloc(64, 7) },
  },
  motionStarted: { motionStarted: { zone: 'path', atMs: NOW_MS - 20, area: 0.25 } },
  motionEnded: { motionEnded: { zone: 'path', atMs: NOW_MS - 2, durationMs: 18 } },
  clipRecorded: {
    clipRecorded: {
      clipId: '1750000000000-0123456789ab',
      reason: 'press',
      reasons: ['press', 'motion'],
      triggerMs: NOW_MS - 12_000,
      startMs: NOW_MS - 17_000,
      endMs: NOW_MS - 1_000,
      bytes: 1_234_567,
      sha256: 'ab'.repeat(32),
      truncated: false,
    },
  },
  mediaHealth: { mediaHealth: { state: 'restart-scheduled', detail: 'worker exited', attempt: 2 } },
  storageAlert: {
    storageAlert: { kind: 'storage-full', itemId: '', items: 3, bytes: 9_000_000, detail: 'ENOSPC' },
  },
  chimeRang: {
    chimeRang: {
      rangAtMs: NOW_MS - 4,
      mode: 'electronic',
      pressToChimeUs: 1234,
      rang: true,
      skippedReason: '',
    },
  },
  status: { status },
  commandResult: {
    commandResult: {
      ok: false,
      errorKind: doorbell.v1.ErrorKind.BUSY,
      errorMessage: 'chime is ringing',
      status,
    },
  },
  pairingRequested: { pairingRequested: {} },
  eventsDropped: { eventsDropped: { count: 7, oldestDroppedCounter: 1_000_001 } },
  keysChanged: {
    keysChanged: { change: 'removed', keyId: '0123456789abcdef', byKeyId: 'fedcba9876543210', keyEpoch: 3 },
  },
  pairingWindow: {
    pairingWindow: { open: true, closesAtMs: NOW_MS + 180_000, reason: 'button', failures: 2 },
  },
  otaProgress: {
    otaProgress: {
      stage: 'written',
      bundleSha256: Buffer.alloc(32, 7),
      version: '0.2.0',
      securityCounter: 2,
      detail: 'slot b',
      nextOffset: 3_145_728,
    },
  },
};

/** One body of every Command kind. */
export const COMMAND_BODIES: {
  readonly [K in NonNullable<doorbell.v1.Command['kind']>]: doorbell.v1.ICommand;
} = {
  ringChimeTest: { ringChimeTest: {} },
  getStatus: { getStatus: {} },
  pair: {
    pair: {
      ownerPublicKey: Buffer.alloc(32, 1),
      ownerLabel: 'owner',
      hubPublicKey: Buffer.alloc(32, 2),
      hubRole: doorbell.v1.Role.OPERATE,
      hubLabel: 'hub',
      footageRecipients: ['age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq'],
      nonce: Buffer.alloc(16, 3),
      proof: Buffer.alloc(32, 4),
    },
  },
  listKeys: { listKeys: {} },
  addKey: { addKey: { publicKey: Buffer.alloc(32, 5), role: doorbell.v1.Role.VIEW, label: 'phone' } },
  removeKey: { removeKey: { keyId: '0123456789abcdef' } },
  rotateKey: { rotateKey: { keyId: '0123456789abcdef', newPublicKey: Buffer.alloc(32, 6) } },
  setRole: { setRole: { keyId: '0123456789abcdef', role: doorbell.v1.Role.MANAGE } },
  setRecipients: {
    setRecipients: { footageRecipients: ['age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq'] },
  },
  openPairingWindow: { openPairingWindow: { seconds: 120 } },
  setChimeMuted: { setChimeMuted: { muted: true } },
  otaBegin: { otaBegin: { bundleSize: 3_145_728, bundleSha256: Buffer.alloc(32, 8) } },
  otaChunk: { otaChunk: { bundleSha256: Buffer.alloc(32, 8), offset: 12_288, data: Buffer.alloc(64, 9) } },
  otaApply: { otaApply: { bundleSha256: Buffer.alloc(32, 8) } },
  otaGetState: { otaGetState: {} },
  listItems: {
    listItems: { afterId: '0000000000041-0123456789ab', limit: 20 },
  },
  getAudit: { getAudit: { from: 40 } },
  getAuditProof: { getAuditProof: { index: 12 } },
  getAuditConsistency: { getAuditConsistency: { fromSizes: [4, 40] } },
  recordShare: {
    recordShare: {
      event: 'requested',
      requestId: '0123456789abcdef',
      requester: 'neighbour',
      reason: 'a parcel went missing',
      fromMs: NOW_MS - 86_400_000,
      untilMs: NOW_MS,
      recipient: 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq',
      expiresAtMs: NOW_MS + 604_800_000,
    },
  },
  deleteItems: { deleteItems: { itemIds: ['1750000000000-0123456789ab'] } },
  fetchItem: { fetchItem: { itemId: '1750000000000-0123456789ab', offset: 12_288, maxBytes: 1_048_576 } },
};
