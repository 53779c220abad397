import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import type { Logger } from '../../common/logger.js';

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
  nowMs?: () => number;
}

/** A typed error answer: `{"error": kind, "message": ...}`. */
function error(kind: string, message: string) {
  return { error: kind, message };
}

/**
 * The hub's HTTP service (`doorbell-hub serve`). Today it answers only its
 * health, the one endpoint that needs no login; everything else is a typed
 * 404. Every response carries the secure-headers set, and a body above
 * MAX_BODY_BYTES is refused (413) whatever the route.
 */
export function createApp(o: AppOptions): Hono {
  const nowMs = o.nowMs ?? Date.now;
  const app = new Hono();
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
  app.notFound((c) => c.json(error('not-found', `${c.req.method} ${c.req.path} is not served`), 404));
  app.onError((err, c) => {
    o.logger.error({ err, path: c.req.path }, 'http: request failed');
    return c.json(error('internal', 'the request failed; see the hub log'), 500);
  });
  return app;
}
