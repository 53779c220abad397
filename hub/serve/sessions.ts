import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { WebRole } from './accounts.js';

export interface Session {
  id: string;
  name: string;
  role: WebRole;
  /** Sent back in the `x-csrf-token` header with every request that changes something. */
  csrf: string;
  createdAtMs: number;
  lastSeenAtMs: number;
}

export interface SessionOptions {
  /** A session unused this long ends (default 12 h). */
  idleMs?: number;
  /** A session ends this long after login, used or not (default 7 days). */
  maxAgeMs?: number;
  /** At most this many at once; the least recently used goes first (default 256). */
  max?: number;
  nowMs?: () => number;
}

/**
 * Login sessions, in memory only: a restart of the hub logs everyone out. The
 * id is 32 random bytes (the cookie's value); it is replaced at every login,
 * so an id planted before a login is worth nothing after it.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly idleMs: number;
  private readonly maxAgeMs: number;
  private readonly max: number;
  private readonly nowMs: () => number;

  constructor(o: SessionOptions = {}) {
    this.idleMs = o.idleMs ?? 12 * 3600_000;
    this.maxAgeMs = o.maxAgeMs ?? 7 * 86_400_000;
    this.max = o.max ?? 256;
    this.nowMs = o.nowMs ?? Date.now;
  }

  get maxAgeS(): number {
    return Math.floor(this.maxAgeMs / 1000);
  }

  create(name: string, role: WebRole): Session {
    const now = this.nowMs();
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      name,
      role,
      csrf: randomBytes(32).toString('base64url'),
      createdAtMs: now,
      lastSeenAtMs: now,
    };
    this.sessions.set(s.id, s);
    while (this.sessions.size > this.max) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    return s;
  }

  /** The live session of this id, refreshed; undefined when unknown or expired (and then forgotten). */
  get(id: string | undefined): Session | undefined {
    if (id === undefined || id.length > 64) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const now = this.nowMs();
    if (now - s.lastSeenAtMs > this.idleMs || now - s.createdAtMs > this.maxAgeMs || now < s.createdAtMs) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeenAtMs = now;
    // Most recently used last: eviction takes the first.
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return s;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  /** Every session of an account (when it is removed or its passphrase changes). */
  endAll(name: string): void {
    for (const [id, s] of this.sessions) if (s.name === name) this.sessions.delete(id);
  }
}

/** Whether `given` is the session's CSRF token, compared in constant time. */
export function csrfMatches(session: Session, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
