import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from 'esbuild';
import { writeBoardFiles } from '../board/board-files.js';
import { buildBundle, HEADER_BYTES, keyMap, parseManifestBytes } from '../board/manifest.js';
import {
  type BoardTrust,
  commit,
  currentLink,
  installToInactiveSlot,
  readBootState,
  selectSlotAtBoot,
  switchToTrial,
} from '../board/slots.js';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { publicKeyToText } from '../proto/keys.js';
import { buildFirmwareBundle } from '../scripts/bundle-build.js';
import { type SlotDaemon, startSlotDaemon, waitForRetainedOnline } from '../test-support/slot-daemon.js';

/**
 * Power-cut suite. The writer (a separate process running the slot library,
 * as the OTA agent will) installs v2 over a board running v1, switches to it,
 * boots it (the selection counts a trial attempt) and commits it. It SIGKILLs
 * itself just before its k-th write to the disk, for k spread over every step
 * of the write, the switch and the first start. After each cut the boot
 * selector must choose a slot that verifies against its signed manifest; for
 * a sample of cuts that slot's daemon is started and must come online. A
 * second part kills the trial daemon itself during its first start.
 *
 * kill -9 loses no page cache, so this proves the order of operations (and
 * that every intermediate state is bootable), not the fsyncs.
 */

const REPO = resolve(import.meta.dirname, '..');
const HW = 'open-doorbell/sim-x64';
const MAX_POINTS = 150;
const DAEMON_SAMPLES = 5;

const WRITER = `
import { loadBoardTrust } from '../board/board-files.js';
import { commit, installToInactiveSlot, selectSlotAtBoot, switchToTrial } from '../board/slots.js';
const [root, bundle, crashAtText] = process.argv.slice(2);
const crashAt = Number(crashAtText);
let steps = 0;
const onStep = () => {
  steps += 1;
  if (steps === crashAt) process.kill(process.pid, 'SIGKILL');
};
const trust = await loadBoardTrust(root, true);
const o = { trust, onStep };
const { slot } = await installToInactiveSlot(root, bundle, o);
await switchToTrial(root, slot, o);
await selectSlotAtBoot(root, o); // the first start of the new slot
await commit(root, o); // its health check passed
process.stdout.write(String(steps));
`;

describe('power cuts during an update', () => {
  let dir = '';
  let base = '';
  let v2Path = '';
  let writerPath = '';
  let trust: BoardTrust;
  let broker: RunningBroker | undefined;
  const daemons: SlotDaemon[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flash-power-cut-'));
    const built = await buildFirmwareBundle({
      devKeyPath: join(dir, 'key', 'dev.pem'),
      hardware: HW,
      out: join(dir, 'v1.bundle'),
    });
    trust = { keys: keyMap([built.key]), hardware: HW, allowDevelopment: true };
    // v2: the same firmware, a new version and security counter, a changed daemon file.
    const v1 = await readFile(built.path);
    const len = v1.readUInt32BE(12);
    const manifest = parseManifestBytes(v1.subarray(HEADER_BYTES, HEADER_BYTES + len));
    let at = HEADER_BYTES + len;
    const files = manifest.files.map((f) => {
      let data = v1.subarray(at, at + f.size);
      at += f.size;
      if (f.path === 'doorbell.js') data = Buffer.concat([data, Buffer.from('\n// v2\n')]);
      return { path: f.path, data, executable: f.executable };
    });
    const { format: _f, files: _files, ...meta } = manifest;
    v2Path = join(dir, 'v2.bundle');
    await writeFile(v2Path, buildBundle(files, { ...meta, version: '0.2.0', securityCounter: 2 }, built.key));

    base = join(dir, 'base');
    const { slot } = await installToInactiveSlot(base, built.path, { trust });
    await switchToTrial(base, slot, { trust });
    await commit(base, { trust });
    await writeBoardFiles(base, {
      hardware: HW,
      releaseKeys: [publicKeyToText(built.key)],
      installPath: base,
      nodePath: process.execPath,
      slot,
    });

    const writer = await build({
      stdin: { contents: WRITER, resolveDir: join(REPO, 'flash'), loader: 'ts' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: join(dir, 'writer.mjs'),
      banner: {
        js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      },
      logLevel: 'silent',
    });
    assert.deepEqual(writer.errors, []);
    writerPath = join(dir, 'writer.mjs');
    broker = await startMosquitto();
  });
  after(async () => {
    for (const d of daemons) await d.stop('SIGKILL');
    await broker?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs the writer on a copy of the v1 board; resolves how it ended. */
  async function cutAt(
    k: number,
  ): Promise<{ root: string; killed: boolean; stdout: string; stderr: string }> {
    const root = join(dir, `cut-${k}`);
    await cp(base, root, { recursive: true, verbatimSymlinks: true });
    return new Promise((res, rej) => {
      const child = spawn(process.execPath, [writerPath, root, v2Path, String(k)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        rej(new Error(`writer at ${k} hung`));
      }, 30_000);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (signal === 'SIGKILL') res({ root, killed: true, stdout, stderr });
        else if (code === 0) res({ root, killed: false, stdout, stderr });
        else rej(new Error(`writer at ${k} failed (${code}): ${stderr}`));
      });
    });
  }

  it('a valid slot boots after a kill -9 at every step of the write, the switch and the first start', async (t) => {
    const full = await cutAt(0); // never cuts: counts the steps
    assert.equal(full.killed, false);
    const total = Number(full.stdout);
    assert.ok(total > 20, `only ${total} steps`);
    // Every step when there are few enough (about 100 today), else MAX_POINTS spread evenly.
    const n = Math.min(total, MAX_POINTS);
    const points = [
      ...new Set(Array.from({ length: n }, (_, i) => 1 + Math.round((i * (total - 1)) / (n - 1)))),
    ];
    assert.ok(points.length >= 50, `${points.length} points`);
    const sampled = new Set(
      Array.from(
        { length: DAEMON_SAMPLES },
        (_, i) => points[Math.round((i * (points.length - 1)) / (DAEMON_SAMPLES - 1))],
      ),
    );
    const seen = new Map<string, number>();
    const queue = [...points];
    const worker = async (): Promise<void> => {
      for (let k = queue.shift(); k !== undefined; k = queue.shift()) {
        const cut = await cutAt(k);
        assert.ok(cut.killed, `the writer finished before step ${k} of ${total}`);
        const sel = await selectSlotAtBoot(cut.root, { trust });
        assert.equal(await readlink(currentLink(cut.root)), sel.slot, `point ${k}`);
        assert.ok(['0.1.0', '0.2.0'].includes(sel.manifest.version), `point ${k}`);
        const state = await readBootState(cut.root);
        assert.ok(state.committedCounter >= 1, `point ${k}`);
        const key = `${sel.manifest.version}/${sel.mode}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (sampled.has(k)) {
          assert.ok(broker);
          const id = `power-cut-${k}`;
          const daemon = startSlotDaemon(cut.root, broker.url, id);
          daemons.push(daemon);
          try {
            await waitForRetainedOnline(broker.port, id, join(cut.root, 'state'));
          } catch (err) {
            throw new Error(`point ${k} (${key}): ${(err as Error).message}\n${daemon.output()}`);
          } finally {
            await daemon.stop();
          }
        } else {
          await rm(cut.root, { recursive: true, force: true });
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    t.diagnostic(
      `${points.length} cut points over ${total} steps; selected: ${JSON.stringify(Object.fromEntries(seen))}`,
    );
    // The cuts landed in every phase: before the switch (v1), during the trial (v2 on trial), after the commit (v2).
    assert.ok(seen.get('0.1.0/committed'), JSON.stringify([...seen]));
    assert.ok(seen.get('0.2.0/trial'), JSON.stringify([...seen]));
    assert.ok(seen.get('0.2.0/committed'), JSON.stringify([...seen]));
  });

  it('kill -9 of the trial daemon during its first start: retried, then rolled back to a daemon that comes online', async () => {
    assert.ok(broker);
    const root = join(dir, 'daemon-kill');
    await cp(base, root, { recursive: true, verbatimSymlinks: true });
    const { slot } = await installToInactiveSlot(root, v2Path, { trust });
    await switchToTrial(root, slot, { trust });
    // Killed at different moments of its start, it never commits: every boot is another attempt.
    for (const delayMs of [0, 60, 150]) {
      const sel = await selectSlotAtBoot(root, { trust });
      assert.equal(sel.mode, 'trial');
      const daemon = startSlotDaemon(root, broker.url, `daemon-kill-${delayMs}`);
      daemons.push(daemon);
      await sleep(delayMs);
      await daemon.stop('SIGKILL');
    }
    const sel = await selectSlotAtBoot(root, { trust });
    assert.deepEqual(
      [sel.slot, sel.mode, sel.manifest.version],
      [slot === 'a' ? 'b' : 'a', 'rolled-back', '0.1.0'],
    );
    const daemon = startSlotDaemon(root, broker.url, 'daemon-kill-final');
    daemons.push(daemon);
    try {
      await waitForRetainedOnline(broker.port, 'daemon-kill-final', join(root, 'state'));
    } finally {
      await daemon.stop();
    }
  });
});
