// `serve`: the long-running hub: the doorbells' events through a persistent session, and HTTP.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { serve as serveHttp } from '@hono/node-server';
import { lowerBackgroundThreads } from '../../common/background-threads.js';
import { createSdNotifier } from '../../common/sd-notify.js';
import { loadOrCreateSigningKey } from '../../proto/index.js';
import { keepPublishedCheckpoints } from '../audit/checkpoints.js';
import { DEFAULT_LISTEN, HubConfigError, parseListen } from '../hub-config.js';
import { hubKeyPath } from '../hub-state.js';
import { AccountStore } from '../serve/accounts.js';
import { createApp } from '../serve/app.js';
import { LoginThrottle } from '../serve/login-throttle.js';
import { SessionStore } from '../serve/sessions.js';
import { SetupToken } from '../serve/setup-token.js';
import { type Context, UsageError } from './context.js';
import { connectWatcher } from './watch.js';

/** How long a stop waits for open HTTP connections before closing them. */
const STOP_GRACE_MS = 3000;

/**
 * Runs until SIGINT or SIGTERM: connects to the broker with its own
 * persistent session (events that arrive while it is down wait there),
 * keeps the audit checkpoints the doorbells publish, and serves HTTP on
 * `listen` (default 127.0.0.1:8580, this machine only). Under systemd
 * (`Type=notify`) it reports ready once it listens, and pings the watchdog
 * while its event loop runs.
 */
export async function serve(ctx: Context, listenText: string | undefined): Promise<number> {
  let listen: { host: string; port: number };
  try {
    listen = parseListen(listenText ?? DEFAULT_LISTEN);
  } catch (err) {
    if (err instanceof HubConfigError) throw new UsageError(err.message);
    throw err;
  }
  const log = ctx.logger;
  const startedAtMs = Date.now();
  const { key } = await loadOrCreateSigningKey(hubKeyPath(ctx.stateDir));
  const { connection, watcher, devices } = await connectWatcher(ctx, { purpose: `serve-${key.keyId}` });
  keepPublishedCheckpoints(watcher, ctx.stateDir, log);
  connection.on('connected', () => log.info({ broker: ctx.broker }, 'connected to the broker'));
  let stopping = false;
  connection.on('disconnected', (reason: unknown) => {
    if (!stopping) log.warn({ broker: ctx.broker, reason: String(reason) }, 'lost the broker; reconnecting');
  });
  connection.start();
  const threads = lowerBackgroundThreads(log);

  const accounts = new AccountStore(ctx.stateDir);
  const setup = new SetupToken(ctx.stateDir);
  const app = createApp({
    logger: log.child({ module: 'http' }),
    health: () => ({ broker: connection.connected, devices, startedAtMs }),
    accounts,
    sessions: new SessionStore(),
    throttle: new LoginThrottle(),
    setup,
  });
  const server = serveHttp({ fetch: app.fetch, hostname: listen.host, port: listen.port });
  const failed = once(server, 'error').then(([err]) => err as NodeJS.ErrnoException);
  const listening = once(server, 'listening').then(() => undefined);
  const problem = await Promise.race([listening, failed]);
  if (problem) {
    threads.stop();
    await connection.stop();
    process.stderr.write(
      `doorbell-hub: cannot listen on ${listenText ?? DEFAULT_LISTEN}: ${problem.code ?? problem.message}\n`,
    );
    return 1;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info({ url }, 'serving');
  process.stdout.write(`doorbell-hub serve: listening on ${url} (health: ${url}/healthz)\n`);
  if (!(await accounts.hasOwner())) {
    await setup.ensure();
    process.stdout.write(
      `first run: no owner account yet. Set the owner's passphrase with the setup token in ${setup.path} (docs/hub-serve.md, "Accounts")\n`,
    );
  }

  const notify = createSdNotifier({ onError: (err) => log.warn({ err: err.message }, 'sd_notify failed') });
  await notify.ready(`listening on ${url}`);
  const stopWatchdog = notify.startWatchdog();

  const signal = await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  stopping = true;
  log.info({ signal: String(signal[0] ?? '') }, 'stopping');
  await notify.stopping();
  stopWatchdog();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const grace = setTimeout(
    () => (server as { closeAllConnections?: () => void }).closeAllConnections?.(),
    STOP_GRACE_MS,
  );
  await closed;
  clearTimeout(grace);
  threads.stop();
  await connection.stop();
  return 0;
}
