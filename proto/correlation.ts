import { randomBytes } from 'node:crypto';

/** Correlation ids on the wire: at most 64 characters of `[0-9A-Za-z_.:-]`; may be empty on events. */
const CORRELATION_ID = /^[0-9A-Za-z_.:-]{0,64}$/;

/** A fresh correlation id for a command: 16 random bytes as 32 lowercase hex characters. */
export function newCorrelationId(): string {
  return randomBytes(16).toString('hex');
}

/** Whether `id` may appear as `Header.correlation_id`. */
export function isCorrelationId(id: unknown): id is string {
  return typeof id === 'string' && CORRELATION_ID.test(id);
}
