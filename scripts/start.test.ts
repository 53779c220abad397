import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { collect, spawnCli } from '../test-support/run-cli.js';

test('npm start: a key press rings the sim chime and the hub shows the verified event; end of input stops everything', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-demo-'));
  try {
    const demo = spawnCli('scripts/start.ts', ['--state-dir', dir]);
    const done = collect(demo, 60_000);
    let seen = '';
    demo.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
    });
    const deadline = Date.now() + 30_000;
    while (!seen.includes('Keys:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(seen, /press the button/, 'the demo says how to press the button');
    demo.stdin?.write('p\n');
    while (!/verified at the hub/.test(seen) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 800));
    demo.stdin?.write('r\n');
    while (!seen.includes('result: {"ok":true}') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    demo.stdin?.end();
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\[chime\] ON/);
    assert.match(result.stdout, /button pressed #1 \(verified, \d+ ms after the press\)/);
    assert.match(result.stdout, /verified at the hub [\d.]+ ms after the chime went on/);
    assert.match(result.stdout, /chime rang \(mechanical/);
    assert.match(result.stdout, /result: \{"ok":true\}/, 'the hub rang the chime with a signed command');
    assert.match(result.stdout, /stopped\./);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
