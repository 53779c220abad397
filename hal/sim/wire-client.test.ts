import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { parseHalConfig } from '../config.js';
import { HalError } from '../errors.js';
import { createHal } from '../index.js';
import { connectWires } from './wire-client.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hal-client-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
const socketPath = () => join(dir, `c${n++}.sock`);

/** A server that answers each line with `reply(line)`, or never when it returns undefined. */
async function fakeServer(path: string, reply: (line: string) => string | undefined): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('data', (chunk) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const answer = reply(line);
        if (answer !== undefined) socket.write(`${answer}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

test('end to end: a press over the socket rings the chime, and the client sees it with hrtime stamps', async () => {
  const path = socketPath();
  const hal = await createHal(parseHalConfig({}), { logger: silentLogger(), simSocketPath: path });
  hal.button.subscribe((e) => {
    if (e.type === 'press') hal.chime.ring();
  });
  const client = await connectWires(path);
  const chimes: Array<{ on: boolean; atNs: bigint }> = [];
  const pulseOver = new Promise<void>((resolve) =>
    client.onChime((on, atNs) => {
      chimes.push({ on, atNs });
      if (!on) resolve();
    }),
  );
  const before = process.hrtime.bigint();
  await client.press(80);
  assert.deepEqual((await client.state()).button, false);
  await pulseOver;
  assert.deepEqual(
    chimes.map((c) => c.on),
    [true, false],
  );
  const [on, off] = chimes;
  assert.ok(on && off && on.atNs > before, 'timestamps are on this machine’s monotonic clock');
  assert.ok(off.atNs - on.atNs >= 240_000_000n, 'a 250 ms pulse');
  await client.close();
  await hal.close();
});

test('press with releasedMs keeps the button released before answering: back-to-back presses count as two', async () => {
  const path = socketPath();
  const hal = await createHal(parseHalConfig({ button: { lockoutMs: 0 } }), {
    logger: silentLogger(),
    simSocketPath: path,
  });
  const presses: number[] = [];
  hal.button.subscribe((e) => {
    if (e.type === 'press') presses.push(presses.length + 1);
  });
  const client = await connectWires(path);
  const t0 = process.hrtime.bigint();
  await client.press(50, 60);
  assert.ok(process.hrtime.bigint() - t0 >= 110_000_000n, 'answered after the press and the release');
  await client.press(50, 60);
  assert.deepEqual(presses, [1, 2], 'the release outlasted minPressMs (30 ms): two presses');
  await assert.rejects(client.press(50, -1), TypeError);
  await client.close();
  await hal.close();
});

test('an unanswered request times out with a message naming it', async () => {
  const path = socketPath();
  const server = await fakeServer(path, () => undefined);
  const client = await connectWires(path, { replyMarginMs: 50 });
  await assert.rejects(
    client.press(10),
    (err) =>
      err instanceof HalError &&
      err.kind === 'timeout' &&
      /'press'.*request #1.*within 60 ms/.test(err.message),
  );
  await client.close();
  await closeServer(server);
});

test('a refusal is a HalError io carrying the server message; close rejects what is pending', async () => {
  const path = socketPath();
  const server = await fakeServer(path, (line) => {
    const { id, op } = JSON.parse(line) as { id: number; op: string };
    if (op === 'press')
      return JSON.stringify({ id, ok: false, error: { kind: 'failed', message: 'finger cramp' } });
    return undefined;
  });
  const client = await connectWires(path);
  await assert.rejects(
    client.press(1),
    (err) => err instanceof HalError && err.kind === 'io' && /finger cramp/.test(err.message),
  );
  const pending = assert.rejects(client.hold(1), (err) => err instanceof HalError && err.kind === 'closed');
  await client.close();
  await pending;
  await assert.rejects(client.press(1), (err) => err instanceof HalError && err.kind === 'closed');
  await closeServer(server);
});

test('connecting to a missing socket is HalError unavailable; bad arguments are TypeErrors', async () => {
  await assert.rejects(
    connectWires(join(dir, 'missing.sock')),
    (err) => err instanceof HalError && err.kind === 'unavailable',
  );
  const path = socketPath();
  const server = await fakeServer(path, () => undefined);
  const client = await connectWires(path);
  await assert.rejects(client.press(Number.NaN), /ms must be/);
  await assert.rejects(client.bounce(-1, 1), /edges/);
  await assert.rejects(client.noise(1, 700_000), /spacingMs/);
  await client.close();
  await closeServer(server);
});
