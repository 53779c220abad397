import {
  type CounterStore,
  doorbell,
  maxEnvelopeBytes,
  newCorrelationId,
  type SigningKey,
  sealEvent,
} from '../../proto/index.js';

export type EventBody = Omit<doorbell.v1.IEvent, 'header'>;

export interface EventSignerDeps {
  deviceId: string;
  key: SigningKey;
  counters: CounterStore;
  nowMs: () => number;
  ttlMs: number;
  /** The device's current key epoch, stamped on every event. */
  keyEpoch?: () => number;
}

/**
 * Signs events with the device identity key: fills the header (device,
 * topic, the next per-key counter, issued-at, expires-at, correlation id)
 * and seals the encoded body in an Envelope.
 */
export class EventSigner {
  constructor(private readonly deps: EventSignerDeps) {}

  seal(topic: string, body: EventBody, correlationId?: string): Uint8Array {
    const issuedAtMs = this.deps.nowMs();
    const header: doorbell.v1.IHeader = {
      deviceId: this.deps.deviceId,
      topic,
      counter: this.deps.counters.next(),
      issuedAtMs,
      expiresAtMs: issuedAtMs + this.deps.ttlMs,
      correlationId: correlationId ?? newCorrelationId(),
      keyEpoch: this.deps.keyEpoch?.() ?? 0,
    };
    return sealEvent(doorbell.v1.Event.create({ ...body, header }), this.deps.key, maxEnvelopeBytes(topic));
  }
}
