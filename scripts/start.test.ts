import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { docCommand, runDocCommand } from '../test-support/doc-commands.js';
import { collect } from '../test-support/run-cli.js';

const run = promisify(execFile);

test('npm start: a key press rings the sim chime and the hub shows the verified event; end of input stops everything', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-demo-'));
  try {
    // As the README says, with the demo's state kept in a temporary directory.
    const started = runDocCommand(docCommand('README.md', 'npm start').text, {
      env: { DOORBELL_DEMO_STATE_DIR: dir },
    });
    const demo = started.child;
    const done = collect(demo, 90_000);
    await started.waitFor(/Keys:/, 30_000);
    assert.match(started.stdout, /press the button/, 'the demo says how to press the button');
    // Ringing never waits for the camera; a clip needs it up, and a pre-roll's worth of video
    // in its ring (the clip must be longer than 3 s): the device says when it has one.
    await started.waitFor(/camera: preroll-ready/, 30_000);
    demo.stdin?.write('p\n');
    await started.waitFor(/verified at the hub/, 30_000);
    // The chime test comes once the press's pulse is over (the demo's sim chime has no minimum gap).
    await started.waitFor(/\[chime\] off/, 30_000);
    demo.stdin?.write('r\n');
    await started.waitFor(/result: \{"ok":true\}/, 30_000);
    // The press also recorded a clip, encrypted to the demo owner's age key.
    await started.waitFor(/clip \S+ recorded/, 30_000);
    demo.stdin?.end();
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\[chime\] ON/);
    assert.match(result.stdout, /button pressed #1 \(verified, \d+ ms after the press(, snapshot \S+)?\)/);
    assert.match(result.stdout, /verified at the hub [\d.]+ ms after the chime went on/);
    assert.match(result.stdout, /chime rang \(mechanical/);
    assert.match(result.stdout, /result: \{"ok":true\}/, 'the hub rang the chime with a signed command');
    assert.match(result.stdout, /stopped\./);
    const clipId = /clip (\S+) recorded \(press/.exec(result.stdout)?.[1];
    assert.ok(clipId, 'a clip was recorded for the press');
    const clips = join(dir, 'doorbell', 'clips');
    const file = (await readdir(clips)).find((f) => f.startsWith(`${clipId}_`) && !f.endsWith('.meta.age'));
    assert.ok(file);
    const mp4 = join(dir, 'clip.mp4');
    await run('age', ['-d', '-i', join(dir, 'owner-age-identity.txt'), '-o', mp4, join(clips, file)]);
    const { stdout } = await run('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'format=duration',
      '-of',
      'csv=p=0',
      mp4,
    ]);
    assert.ok(Number(stdout) > 3, `a clip of ${stdout.trim()} s, with pre- and post-roll`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
