import { EventEmitter } from 'node:events';
import type { Logger } from '../common/logger.js';
import { maxPublishPacketBytes } from '../common/mqtt-frames.js';
import {
  type doorbell,
  MAX_DATA_ENVELOPE_BYTES,
  MAX_ENVELOPE_BYTES,
  openEvent,
  parseDeviceTopic,
  topicsFor,
  VerifyError,
  type VerifyKey,
} from '../proto/index.js';

export interface VerifiedEvent {
  deviceId: string;
  topic: string;
  /** `data` only for a connection that subscribed to a device's data topic (a fetch). */
  channel: 'evt' | 'status' | 'data';
  event: doorbell.v1.Event;
  counter: number;
  correlationId: string;
  issuedAtMs: number;
  receivedAtMs: number;
  receivedAtNs: bigint;
  retained: boolean;
  /** Size of the envelope on the wire. */
  payloadBytes: number;
}

export interface RejectedMessage {
  topic: string;
  kind: string;
  reason: string;
}

export interface WatcherEvents {
  event: [VerifiedEvent];
  rejected: [RejectedMessage];
}

const DEDUP_WINDOW = 10_000;

/** The longest device id the wire contract allows (proto/topics.ts; event-watcher.test.ts holds the two together). */
export const MAX_DEVICE_ID_CHARS = 63;

/**
 * Verifies every message on device event and status topics against the
 * pinned device keys, drops duplicates (same device, key and counter, as QoS 1
 * may deliver twice) and emits what remains. Never throws into MQTT.
 */
export class EventWatcher extends EventEmitter<WatcherEvents> {
  private readonly seen = new Set<string>();

  constructor(
    private readonly devices: ReadonlyMap<string, VerifyKey>,
    private readonly logger: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {
    super();
  }

  static readonly subscriptions = ['doorbell/v1/+/evt', 'doorbell/v1/+/status'];

  /**
   * The largest packet these subscriptions legitimately carry: one signed
   * envelope on the longest status topic. A hub's connection announces it as
   * its Maximum Packet Size, so the broker drops anything larger instead of
   * sending it.
   */
  static readonly maxPacketBytes = maxPublishPacketBytes(
    Buffer.byteLength(topicsFor('a'.repeat(MAX_DEVICE_ID_CHARS)).status),
    MAX_ENVELOPE_BYTES,
  );

  /** The same for a connection that also subscribes to a device's `data` topic (footage chunks). */
  static readonly maxDataPacketBytes = maxPublishPacketBytes(
    Buffer.byteLength(topicsFor('a'.repeat(MAX_DEVICE_ID_CHARS)).data),
    MAX_DATA_ENVELOPE_BYTES,
  );

  handle(topic: string, payload: Uint8Array, retained: boolean): void {
    const receivedAtNs = process.hrtime.bigint();
    const parsed = parseDeviceTopic(topic);
    if (!parsed || parsed.channel === 'cmd') return;
    const key = this.devices.get(parsed.deviceId);
    if (!key) {
      this.reject(topic, 'unknown-device', `no pinned key for device '${parsed.deviceId}'`);
      return;
    }
    try {
      const nowMs = this.nowMs();
      const { event, header } = openEvent(payload, {
        deviceId: parsed.deviceId,
        topic,
        nowMs,
        keys: new Map([[key.keyId, key]]),
      });
      const dedupKey = `${parsed.deviceId}/${key.keyId}/${header.counter}`;
      if (this.seen.has(dedupKey)) {
        this.logger.debug({ dedupKey }, 'duplicate event dropped');
        return;
      }
      this.remember(dedupKey);
      this.emit('event', {
        deviceId: parsed.deviceId,
        topic,
        channel: parsed.channel,
        event,
        counter: header.counter,
        correlationId: header.correlationId,
        issuedAtMs: header.issuedAtMs,
        receivedAtMs: nowMs,
        receivedAtNs,
        retained,
        payloadBytes: payload.length,
      });
    } catch (err) {
      if (err instanceof VerifyError) this.reject(topic, err.kind, err.message);
      else this.reject(topic, 'internal', String(err));
    }
  }

  private remember(dedupKey: string): void {
    this.seen.add(dedupKey);
    if (this.seen.size > DEDUP_WINDOW) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  private reject(topic: string, kind: string, reason: string): void {
    this.logger.warn({ topic, kind, reason }, 'event rejected');
    this.emit('rejected', { topic, kind, reason });
  }
}
