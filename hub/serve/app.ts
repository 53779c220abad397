import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { secureHeaders } from 'hono/secure-headers';
import { z } from 'zod';
import type { Logger } from '../../common/logger.js';
import { AccountError, type AccountStore, MAX_PASSPHRASE_CHARS } from './accounts.js';
import type { LoginThrottle } from './login-throttle.js';
import { csrfMatches, type Session, type SessionStore } from './sessions.js';
import type { SetupToken } from './setup-token.js';

export const SESSION_COOKIE = 'odb_session';

/** A request body larger than this is refused (413) before it is read further. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface Health {
  /** Whether the hub is connected to the broker (and so to its doorbells). */
  broker: boolean;
  /** Doorbells paired with this hub. */
  devices: number;
  startedAtMs: number;
}

export interface AppOptions {
  health: () => Health;
  logger: Logger;
  accounts: AccountStore;
  sessions: SessionStore;
  throttle: LoginThrottle;
  setup: SetupToken;
  /** Mark the session cookie Secure (the hub is reached over HTTPS, e.g. behind a proxy). */
  secureCookies?: boolean;
  nowMs?: () => number;
}

type Env = { Variables: { session: Session } };

const passphrase = z.string().min(1).max(MAX_PASSPHRASE_CHARS);
const loginSchema = z.object({ name: z.string().max(64), passphrase }).strict();
const setupSchema = z.object({ token: z.string().max(64), name: z.string().max(64), passphrase }).strict();
const accountSchema = z.object({ name: z.string().max(64), role: z.literal('view'), passphrase }).strict();

/** A typed error answer: `{"error": kind, "message": ...}`. */
function error(kind: string, message: string) {
  return { error: kind, message };
}

/** The client's address, for the login throttle (unknown outside a real server). */
function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The request's JSON body, checked by `schema`; an Error answer (415 or 400) when it is not one. */
async function jsonBody<T>(
  c: Context,
  schema: z.ZodType<T>,
): Promise<{ ok: true; value: T } | { ok: false; response: Response }> {
  if (!(c.req.header('content-type') ?? '').toLowerCase().startsWith('application/json'))
    return { ok: false, response: c.json(error('unsupported-media-type', 'send application/json'), 415) };
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    return { ok: false, response: c.json(error('bad-request', 'the body is not JSON'), 400) };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      response: c.json(
        error('bad-request', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`),
        400,
      ),
    };
  }
  return { ok: true, value: parsed.data };
}

/**
 * The hub's HTTP service (`doorbell-hub serve`). Without a login it answers
 * only its health, the first run's owner setup and the login itself;
 * everything under /api/ needs a session cookie (HttpOnly, SameSite=Strict,
 * replaced at every login), and every request that changes something also
 * the session's CSRF token in `x-csrf-token`, a JSON body, and no foreign
 * Origin. Every response carries the secure-headers set, and a body above
 * MAX_BODY_BYTES is refused (413) whatever the route.
 */
export function createApp(o: AppOptions): Hono<Env> {
  const nowMs = o.nowMs ?? Date.now;
  const app = new Hono<Env>();
  app.use('*', async (c, next) => {
    const t0 = performance.now();
    await next();
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    const entry = { method: c.req.method, path: c.req.path, status: c.res.status, ms };
    // Health checks come every few seconds: only the others are worth a line at info.
    if (c.req.path === '/healthz') o.logger.debug(entry, 'http');
    else o.logger.info(entry, 'http');
  });
  app.use('*', secureHeaders());
  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        c.json(error('too-large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`), 413),
    }),
  );
  // A request from another site's page is refused before it reaches any route.
  app.use('*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const origin = c.req.header('origin');
    const site = c.req.header('sec-fetch-site');
    if ((origin !== undefined && origin !== new URL(c.req.url).origin) || site === 'cross-site')
      return c.json(error('cross-site', 'requests from other sites are refused'), 403);
    return next();
  });
  app.get('/healthz', (c) => {
    const h = o.health();
    const body = {
      status: h.broker ? 'ok' : 'degraded',
      broker: h.broker ? 'connected' : 'disconnected',
      devices: h.devices,
      uptimeS: Math.floor((nowMs() - h.startedAtMs) / 1000),
    };
    // Degraded is 503: a hub that cannot reach its doorbells is not serving its purpose.
    return c.json(body, h.broker ? 200 : 503);
  });

  const startSession = (c: Context, name: string, role: 'owner' | 'view') => {
    const old = getCookie(c, SESSION_COOKIE);
    if (old) o.sessions.end(old);
    const s = o.sessions.create(name, role);
    setCookie(c, SESSION_COOKIE, s.id, {
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
      maxAge: o.sessions.maxAgeS,
      secure: o.secureCookies ?? false,
    });
    return { name, role, csrf: s.csrf };
  };

  app.post('/api/setup', async (c) => {
    const body = await jsonBody(c, setupSchema);
    if (!body.ok) return body.response;
    const key = `setup:${clientAddress(c)}`;
    const wait = o.throttle.waitMs(key);
    if (wait > 0)
      return c.json(
        { ...error('throttled', 'too many failed attempts'), retryAfterS: Math.ceil(wait / 1000) },
        429,
      );
    if (await o.accounts.hasOwner()) return c.json(error('conflict', 'the owner is already set'), 409);
    if (!(await o.setup.matches(body.value.token))) {
      o.throttle.failed(key);
      return c.json(error('setup-failed', 'the setup token is not the one in the hub state'), 403);
    }
    try {
      await o.accounts.add(body.value.name, 'owner', body.value.passphrase);
    } catch (err) {
      if (err instanceof AccountError) return c.json(error(err.kind, err.message), 400);
      throw err;
    }
    await o.setup.clear();
    o.throttle.succeeded(key);
    o.logger.warn({ name: body.value.name }, 'web: the owner account was set');
    return c.json(startSession(c, body.value.name, 'owner'), 201);
  });

  app.post('/api/login', async (c) => {
    const body = await jsonBody(c, loginSchema);
    if (!body.ok) return body.response;
    const keys = [`name:${body.value.name}`, `addr:${clientAddress(c)}`];
    const wait = Math.max(...keys.map((k) => o.throttle.waitMs(k)));
    if (wait > 0)
      return c.json(
        { ...error('throttled', 'too many failed logins'), retryAfterS: Math.ceil(wait / 1000) },
        429,
      );
    const account = await o.accounts.verify(body.value.name, body.value.passphrase);
    if (!account) {
      for (const k of keys) o.throttle.failed(k);
      o.logger.warn({ name: body.value.name, address: clientAddress(c) }, 'web: a login failed');
      return c.json(error('login-failed', 'wrong name or passphrase'), 401);
    }
    for (const k of keys) o.throttle.succeeded(k);
    return c.json(startSession(c, account.name, account.role));
  });

  // Everything else under /api/ needs a live session, and a change its CSRF token.
  const authenticated: MiddlewareHandler<Env> = async (c, next) => {
    const s = o.sessions.get(getCookie(c, SESSION_COOKIE));
    if (!s) return c.json(error('unauthenticated', 'log in first'), 401);
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !csrfMatches(s, c.req.header('x-csrf-token')))
      return c.json(error('csrf', 'the x-csrf-token header is missing or wrong'), 403);
    c.set('session', s);
    return next();
  };
  const owner: MiddlewareHandler<Env> = async (c, next) => {
    if (c.get('session').role !== 'owner')
      return c.json(error('forbidden', 'only the owner may do this'), 403);
    return next();
  };
  app.use('/api/*', authenticated);

  app.get('/api/me', (c) => {
    const s = c.get('session');
    return c.json({ name: s.name, role: s.role, csrf: s.csrf });
  });
  app.post('/api/logout', (c) => {
    o.sessions.end(c.get('session').id);
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.body(null, 204);
  });
  app.get('/api/accounts', owner, async (c) => c.json(await o.accounts.list()));
  app.post('/api/accounts', owner, async (c) => {
    const body = await jsonBody(c, accountSchema);
    if (!body.ok) return body.response;
    try {
      await o.accounts.add(body.value.name, body.value.role, body.value.passphrase);
    } catch (err) {
      if (err instanceof AccountError)
        return c.json(error(err.kind, err.message), err.kind === 'exists' ? 409 : 400);
      throw err;
    }
    o.logger.warn({ name: body.value.name, by: c.get('session').name }, 'web: a View account was added');
    return c.json({ name: body.value.name, role: body.value.role }, 201);
  });

  app.notFound((c) => c.json(error('not-found', `${c.req.method} ${c.req.path} is not served`), 404));
  app.onError((err, c) => {
    o.logger.error({ err, path: c.req.path }, 'http: request failed');
    return c.json(error('internal', 'the request failed; see the hub log'), 500);
  });
  return app;
}
