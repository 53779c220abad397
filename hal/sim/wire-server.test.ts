import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../common/logger.js';
import { waitFor } from '../../test-support/wait-for.js';
import { HalError } from '../errors.js';
import { LineSplitter } from './line-splitter.js';
import { SimWires } from './sim-wires.js';
import { startWireServer } from './wire-server.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hal-wires-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
const socketPath = () => join(dir, `w${n++}.sock`);

/** A raw client: write bytes, read reply lines as parsed JSON. */
async function raw(path: string) {
  const socket: Socket = connect(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const splitter = new LineSplitter(1 << 20);
  const lines: unknown[] = [];
  let wake: () => void = () => {};
  socket.on('data', (chunk: Buffer) => {
    for (const line of splitter.push(chunk)) lines.push(JSON.parse(line));
    wake();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const next = async (): Promise<Record<string, unknown>> => {
    while (lines.length === 0) {
      await Promise.race([new Promise<void>((r) => (wake = r)), closed]);
      if (lines.length === 0 && socket.destroyed) throw new Error('connection closed');
    }
    return lines.shift() as Record<string, unknown>;
  };
  const send = (text: string | Uint8Array) => socket.write(text);
  return { socket, next, send, closed, end: () => socket.destroy() };
}

test('state and press round trip; press releases the button before the reply', async () => {
  const wires = new SimWires();
  const path = socketPath();
  const server = await startWireServer(wires, path, silentLogger());
  const c = await raw(path);
  c.send('{"id":1,"op":"state"}\n');
  assert.deepEqual(await c.next(), {
    id: 1,
    ok: true,
    state: { button: false, chime: false, led: false, light: false },
  });
  const edges: boolean[] = [];
  wires.buttonLine.watch((level) => edges.push(level));
  c.send('{"id":2,"op":"press","ms":20}\n{"id":3,"op":"bounce","edges":4,"spacingMs":0.5,"settleMs":5}\n');
  assert.deepEqual(await c.next(), { id: 2, ok: true });
  assert.deepEqual(await c.next(), { id: 3, ok: true });
  assert.deepEqual(edges, [true, false, true, false, true, false, true, false]);
  c.end();
  await server.close();
});

test('the light request switches the sim camera light, tells its listeners once per change, and shows in state', async () => {
  const wires = new SimWires();
  const seen: boolean[] = [];
  wires.onLight((on) => seen.push(on));
  const path = socketPath();
  const server = await startWireServer(wires, path, silentLogger());
  const c = await raw(path);
  c.send('{"id":1,"op":"light","on":true}\n{"id":2,"op":"light","on":true}\n{"id":3,"op":"state"}\n');
  assert.deepEqual(await c.next(), { id: 1, ok: true });
  assert.deepEqual(await c.next(), { id: 2, ok: true });
  assert.deepEqual(await c.next(), {
    id: 3,
    ok: true,
    state: { button: false, chime: false, led: false, light: true },
  });
  c.send('{"id":4,"op":"light","on":"yes"}\n{"id":5,"op":"light","on":false}\n');
  const bad = await c.next();
  assert.equal(bad.ok, false);
  assert.deepEqual(await c.next(), { id: 5, ok: true });
  assert.deepEqual(seen, [true, false]);
  c.end();
  await server.close();
});

test('the socket is mode 0600; a live socket is refused as busy; a non-socket is not removed', async () => {
  const path = socketPath();
  const server = await startWireServer(new SimWires(), path, silentLogger());
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  await assert.rejects(
    startWireServer(new SimWires(), path, silentLogger()),
    (e) => e instanceof HalError && e.kind === 'busy',
  );
  await server.close();
  const file = socketPath();
  await writeFile(file, 'precious');
  await assert.rejects(
    startWireServer(new SimWires(), file, silentLogger()),
    (e) => e instanceof HalError && e.kind === 'invalid-config',
  );
  assert.equal((await stat(file)).size, 8);
});

test('a stale socket left by a killed process is replaced', async () => {
  const path = socketPath();
  const script = `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  await new Promise<void>((resolve) => execFile(process.execPath, ['-e', script], () => resolve()));
  assert.ok((await stat(path)).isSocket(), 'the killed process left its socket file');
  const server = await startWireServer(new SimWires(), path, silentLogger());
  await server.close();
});

test('garbage, bad fields and unknown ops get bad-request replies and the connection keeps serving', async () => {
  const path = socketPath();
  const server = await startWireServer(new SimWires(), path, silentLogger());
  const c = await raw(path);
  const check = async (line: string, id: number | null) => {
    c.send(`${line}\n`);
    const reply = await c.next();
    assert.equal(reply.id, id);
    assert.equal(reply.ok, false);
    assert.equal((reply.error as { kind: string }).kind, 'bad-request', line);
  };
  await check('not json', null);
  await check('[]', null);
  await check('{"id":4,"op":"explode"}', 4);
  await check('{"id":5,"op":"press","ms":-1}', 5);
  await check('{"id":6,"op":"press","ms":1e9}', 6);
  await check('{"id":7,"op":"bounce","edges":1.5,"spacingMs":1}', 7);
  await check('{"id":8,"op":"press","ms":1,"extra":true}', 8);
  await check('{"id":-1,"op":"state"}', null);
  c.send('{"id":9,"op":"state"}\n');
  assert.equal((await c.next()).ok, true);
  c.end();
  await server.close();
});

test('an oversized line gets an error reply and the connection is dropped', async () => {
  const path = socketPath();
  const server = await startWireServer(new SimWires(), path, silentLogger());
  const c = await raw(path);
  c.send(`{"id":1,"op":"state","pad":"${'x'.repeat(5000)}"}\n`);
  const reply = await c.next();
  assert.equal(reply.ok, false);
  assert.match(String((reply.error as { message: string }).message), /4096/);
  await c.closed;
  await server.close();
});

test('more than 64 requests in flight on one connection are refused, not queued', async () => {
  const path = socketPath();
  const server = await startWireServer(new SimWires(), path, silentLogger());
  const c = await raw(path);
  c.send(Array.from({ length: 70 }, (_, i) => `{"id":${i},"op":"press","ms":0}\n`).join(''));
  const replies: Array<Record<string, unknown>> = [];
  while (replies.length < 70) replies.push(await c.next());
  assert.equal(replies.filter((r) => r.ok === true).length, 64);
  assert.equal(
    replies.filter((r) => (r.error as { kind?: string } | undefined)?.kind === 'failed').length,
    6,
  );
  c.end();
  await server.close();
});

test('closing the server cuts a long action short, releases the button and drops clients', async () => {
  const wires = new SimWires();
  const path = socketPath();
  const server = await startWireServer(wires, path, silentLogger());
  const c = await raw(path);
  c.send('{"id":1,"op":"hold","ms":600000}\n');
  await waitFor(() => wires.buttonState(), 'the hold begun');
  await server.close();
  await c.closed;
  assert.equal(wires.buttonState(), false);
});

test('property: random bytes never crash the server and it keeps serving another client', async () => {
  const path = socketPath();
  const server = await startWireServer(new SimWires(), path, silentLogger());
  const observer = await raw(path);
  let id = 0;
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 6000 }), fc.boolean(), async (bytes, newline) => {
      const c = await raw(path);
      c.send(bytes);
      if (newline) c.send('\n');
      await new Promise((r) => setImmediate(r));
      c.end();
      observer.send(`{"id":${++id},"op":"state"}\n`);
      const reply = await observer.next();
      assert.equal(reply.id, id);
      assert.equal(reply.ok, true);
    }),
    { numRuns: 60 },
  );
  observer.end();
  await server.close();
});

test('chime-history pages through every recorded change with server timestamps, in order', async () => {
  const wires = new SimWires();
  const path = socketPath();
  const server = await startWireServer(wires, path, silentLogger());
  const { connectWires } = await import('./wire-client.js');
  const client = await connectWires(path);
  try {
    assert.deepEqual(await client.chimeHistory(), []);
    for (let i = 0; i < 101; i++) wires.chimeLine.write(i % 2 === 0); // more than two pages
    const fetched = await client.chimeHistory();
    assert.deepEqual(fetched, [...wires.chimeHistory()]);
    assert.equal(fetched.length, 101);
    assert.ok(fetched.every((c, i) => c.on === (i % 2 === 0)));
    const c = await raw(path);
    c.send('{"id":9,"op":"chime-history","from":100}\n');
    const reply = (await c.next()) as { history: { first: number; next: number; changes: unknown[] } };
    assert.deepEqual([reply.history.first, reply.history.next, reply.history.changes.length], [100, 101, 1]);
    c.send('{"id":10,"op":"chime-history","from":-1}\n');
    assert.equal((await c.next()).ok, false);
    c.end();
  } finally {
    await client.close();
    await server.close();
  }
});
