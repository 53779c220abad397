import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../common/logger.js';
import { AccountStore } from './accounts.js';
import { createApp, SESSION_COOKIE } from './app.js';
import { FREE_FAILURES, LoginThrottle } from './login-throttle.js';
import { SessionStore } from './sessions.js';
import { SetupToken } from './setup-token.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const OWNER_PASS = 'correct horse battery staple';
const VIEW_PASS = 'the family member passphrase';

async function hub() {
  const dir = await mkdtemp(join(tmpdir(), 'hub-web-'));
  dirs.push(dir);
  let now = 1_750_000_000_000;
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const accounts = new AccountStore(dir);
  const setup = new SetupToken(dir);
  const app = createApp({
    logger: silentLogger(),
    health: () => ({ broker: true, devices: 0, startedAtMs: 0 }),
    accounts,
    sessions: new SessionStore({ nowMs: clock.now }),
    throttle: new LoginThrottle(clock.now),
    setup,
    nowMs: clock.now,
  });
  const call = (
    method: string,
    path: string,
    o: { body?: unknown; cookie?: string; csrf?: string; headers?: Record<string, string> } = {},
  ) =>
    app.request(`http://hub.test${path}`, {
      method,
      headers: {
        ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(o.cookie ? { cookie: `${SESSION_COOKIE}=${o.cookie}` } : {}),
        ...(o.csrf ? { 'x-csrf-token': o.csrf } : {}),
        ...o.headers,
      },
      ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
    });
  const sessionOf = (r: Response) => /odb_session=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')?.[1];
  return { dir, app, call, accounts, setup, clock, sessionOf };
}

async function withOwner() {
  const h = await hub();
  const token = await h.setup.ensure();
  const r = await h.call('POST', '/api/setup', { body: { token, name: 'owner', passphrase: OWNER_PASS } });
  assert.equal(r.status, 201);
  const { csrf } = (await r.json()) as { csrf: string };
  return { ...h, ownerCookie: h.sessionOf(r) ?? '', ownerCsrf: csrf };
}

describe('the web app: accounts, sessions, CSRF', () => {
  test('first run: setting the owner needs the setup token from the hub state; it works once, and the token is gone', async () => {
    const h = await hub();
    const token = await h.setup.ensure();
    assert.equal((await stat(h.setup.path)).mode & 0o777, 0o600);
    const wrong = await h.call('POST', '/api/setup', {
      body: { token: 'f'.repeat(32), name: 'owner', passphrase: OWNER_PASS },
    });
    assert.equal(wrong.status, 403);
    assert.equal(await h.accounts.hasOwner(), false);
    const r = await h.call('POST', '/api/setup', { body: { token, name: 'owner', passphrase: OWNER_PASS } });
    assert.equal(r.status, 201);
    const cookie = r.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\//);
    const again = await h.call('POST', '/api/setup', {
      body: { token, name: 'owner2', passphrase: OWNER_PASS },
    });
    assert.equal(again.status, 409);
    await assert.rejects(stat(h.setup.path), /ENOENT/);
    // The passphrase is stored as an scrypt hash only.
    const file = await readFile(h.accounts.path, 'utf8');
    assert.equal(file.includes(OWNER_PASS), false);
    assert.equal((await stat(h.accounts.path)).mode & 0o777, 0o600);
  });

  test('login: a wrong passphrase and an unknown name get the same 401; after 5 failures even the right one waits (429), then works; a planted session id is replaced', async () => {
    const h = await withOwner();
    const bad = await h.call('POST', '/api/login', {
      body: { name: 'owner', passphrase: 'not the passphrase' },
    });
    const unknown = await h.call('POST', '/api/login', {
      body: { name: 'nobody', passphrase: 'not the passphrase' },
    });
    assert.equal(bad.status, 401);
    assert.equal(unknown.status, 401);
    assert.deepEqual(await bad.json(), await unknown.json());
    for (let i = 2; i < FREE_FAILURES; i++)
      await h.call('POST', '/api/login', { body: { name: 'owner', passphrase: `guess ${i}` } });
    const throttled = await h.call('POST', '/api/login', { body: { name: 'owner', passphrase: OWNER_PASS } });
    assert.equal(throttled.status, 429);
    assert.ok(((await throttled.json()) as { retryAfterS: number }).retryAfterS >= 1);
    h.clock.advance(1000);
    const planted = 'A'.repeat(43);
    const ok = await h.call('POST', '/api/login', {
      body: { name: 'owner', passphrase: OWNER_PASS },
      cookie: planted,
    });
    assert.equal(ok.status, 200);
    const id = h.sessionOf(ok);
    assert.ok(id && id !== planted, 'a new session id at login');
    assert.equal((await h.call('GET', '/api/me', { cookie: planted })).status, 401);
    assert.equal((await h.call('GET', '/api/me', { cookie: id })).status, 200);
    // Sessions expire: 12 h unused.
    h.clock.advance(12 * 3600_000 + 1);
    assert.equal((await h.call('GET', '/api/me', { cookie: id })).status, 401);
  });

  test('a View account reads /api/me but cannot list or add accounts; changes need the CSRF token, JSON and no foreign origin; logout ends the session', async () => {
    const h = await withOwner();
    const add = (o: { csrf?: string; headers?: Record<string, string>; body?: unknown }) =>
      h.call('POST', '/api/accounts', {
        cookie: h.ownerCookie,
        body: o.body ?? { name: 'family', role: 'view', passphrase: VIEW_PASS },
        ...o,
      });
    assert.equal((await add({})).status, 403, 'no CSRF token');
    assert.equal((await add({ csrf: 'x'.repeat(43) })).status, 403, 'a wrong CSRF token');
    assert.equal(
      (await add({ csrf: h.ownerCsrf, headers: { origin: 'https://evil.example' } })).status,
      403,
      'another site',
    );
    assert.equal(
      (await add({ csrf: h.ownerCsrf, headers: { 'content-type': 'text/plain' } })).status,
      415,
      'a form post',
    );
    assert.equal(
      (await add({ csrf: h.ownerCsrf, body: { name: 'x', role: 'owner', passphrase: VIEW_PASS } })).status,
      400,
    );
    assert.equal((await add({ csrf: h.ownerCsrf })).status, 201);

    const login = await h.call('POST', '/api/login', { body: { name: 'family', passphrase: VIEW_PASS } });
    assert.equal(login.status, 200);
    const view = h.sessionOf(login) ?? '';
    const { csrf } = (await login.json()) as { csrf: string };
    const me = (await (await h.call('GET', '/api/me', { cookie: view })).json()) as { role: string };
    assert.equal(me.role, 'view');
    assert.equal((await h.call('GET', '/api/accounts', { cookie: view })).status, 403);
    const escalate = await h.call('POST', '/api/accounts', {
      cookie: view,
      csrf,
      body: { name: 'mine', role: 'view', passphrase: VIEW_PASS },
    });
    assert.equal(escalate.status, 403);
    assert.equal((await h.call('POST', '/api/logout', { cookie: view, csrf })).status, 204);
    assert.equal((await h.call('GET', '/api/me', { cookie: view })).status, 401);
  });

  test('property: requests without a session change no account and get nothing but health, 4xx answers and logins that fail', async () => {
    const h = await withOwner();
    const before = await readFile(h.accounts.path, 'utf8');
    const request = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
      path: fc.constantFrom(
        '/api/me',
        '/api/accounts',
        '/api/logout',
        '/api/login',
        '/api/setup',
        '/healthz',
        '/x',
      ),
      body: fc.option(
        fc.oneof(
          fc.json({ maxDepth: 2 }),
          fc.record({
            name: fc.constantFrom('owner', 'family', 'x'),
            passphrase: fc.string({ maxLength: 40 }),
          }),
          fc.record({
            token: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), maxLength: 32 }),
            name: fc.string(),
            passphrase: fc.string(),
          }),
        ),
        { nil: undefined },
      ),
      cookie: fc.option(fc.base64String({ maxLength: 44 }), { nil: undefined }),
      csrf: fc.option(fc.string({ maxLength: 44 }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(request, { maxLength: 4 }), async (requests) => {
        for (const r of requests) {
          const res = await h.call(r.method, r.path, {
            // A GET carries no body (fetch's Request refuses one).
            ...(r.body !== undefined && r.method !== 'GET' ? { body: r.body } : {}),
            ...(r.cookie !== undefined ? { cookie: r.cookie } : {}),
            ...(r.csrf !== undefined ? { csrf: r.csrf } : {}),
          });
          if (r.path === '/healthz' && r.method === 'GET') assert.equal(res.status, 200);
          else assert.ok(res.status >= 400 && res.status < 500, `${r.method} ${r.path}: ${res.status}`);
        }
        assert.equal(await readFile(h.accounts.path, 'utf8'), before);
      }),
      { numRuns: 25 },
    );
  });
});
