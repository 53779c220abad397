import { randomUUID } from 'node:crypto';

/** Correlation ids on the wire: at most 64 characters of `[0-9A-Za-z_.:-]`; may be empty on events. */
const CORRELATION_ID = /^[0-9A-Za-z_.:-]{0,64}$/;

/**
 * A fresh correlation id: a random UUID (122 random bits) as 32 lowercase hex
 * characters. randomUUID draws from a pool Node refills in batches; a
 * randomBytes call per id cost about 90 us on the press path after idle.
 */
export function newCorrelationId(): string {
  return randomUUID().replaceAll('-', '');
}

/** Whether `id` may appear as `Header.correlation_id`. */
export function isCorrelationId(id: unknown): id is string {
  return typeof id === 'string' && CORRELATION_ID.test(id);
}
