import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { silentLogger } from '../../common/logger.js';
import { SimWires } from './sim-wires.js';
import { startWireServer } from './wire-server.js';

const run = promisify(execFile);

test('a client that half-closes after its request (`printf ... | socat - UNIX-CONNECT:...`) still gets every answer', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hal-half-close-'));
  const wires = new SimWires();
  const path = join(dir, 'w.sock');
  const server = await startWireServer(wires, path, silentLogger());
  try {
    const requests = '{"id":1,"op":"press","ms":30}\n{"id":2,"op":"state"}\n';
    // socat sends the requests, shuts down its write side at end of input, and prints what comes back.
    const { stdout } = await run('sh', [
      '-c',
      `printf '%s' '${requests}' | socat -t 10 - UNIX-CONNECT:${path}`,
    ]);
    const replies = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; ok: boolean });
    assert.deepEqual(
      replies.map((r) => [r.id, r.ok]).sort(),
      [
        [1, true],
        [2, true],
      ],
      stdout,
    );
    const edges = wires.buttonLine.read();
    assert.equal(edges, false, 'the press was released before its answer');
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
