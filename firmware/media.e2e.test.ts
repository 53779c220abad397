import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { connectWires, type WireClient } from '../hal/sim/wire-client.js';
import { type Harness, startHarness } from '../test-support/doorbell-harness.js';
import { waitFor } from '../test-support/wait-for.js';

const run = promisify(execFile);
const PREROLL_S = 2;
const SEGMENT_S = 1;

let broker: RunningBroker;
let h: Harness;
let wires: WireClient;
let keys: string;
let ownerIdentity: string;

before(async () => {
  broker = await startMosquitto();
  keys = await mkdtemp(join(tmpdir(), 'doorbell-media-keys-'));
  ownerIdentity = join(keys, 'owner.txt');
  await run('age-keygen', ['-o', ownerIdentity]);
  const recipient = (await run('age-keygen', ['-y', ownerIdentity])).stdout.trim();
  h = await startHarness(broker.url, {
    // No lockout after a release and a short chime pulse with no minimum gap: a press may
    // follow the one before as soon as the button has been released for minPressMs.
    hal: { button: { lockoutMs: 0 }, chime: { pulseMs: 50, minGapMs: 0 } },
    media: {
      enabled: true,
      camera: {
        width: 320,
        height: 240,
        fps: 10,
        bitrateKbps: 300,
        segmentS: SEGMENT_S,
        prerollS: PREROLL_S,
        postrollS: 1,
        ringDir: join('/dev/shm', `doorbell-e2e-ring-${process.pid}`),
      },
      recordMotion: false,
      store: { recipients: [recipient] },
    },
  });
  wires = await connectWires(h.device.simSocket ?? '');
});

after(async () => {
  await wires?.close();
  await h?.stop();
  await broker?.stop();
  await rm(keys, { recursive: true, force: true });
});

const clipsDir = (): string => join(h.dir, 'device', 'clips');

async function storedFile(id: string): Promise<string> {
  const name = (await readdir(clipsDir())).find(
    (f) => f.startsWith(`${id}_`) && f.endsWith('.age') && !f.endsWith('.meta.age'),
  );
  assert.ok(name, `no stored file for ${id}`);
  return join(clipsDir(), name);
}

/** The kind of every stored item, read from its sealed metadata with the owner's key (the age command). */
async function sealedKinds(): Promise<string[]> {
  const metas = (await readdir(clipsDir())).filter((f) => f.endsWith('.meta.age'));
  const kinds: string[] = [];
  for (const m of metas) {
    const { stdout } = await run('age', ['-d', '-i', ownerIdentity, join(clipsDir(), m)]);
    kinds.push((JSON.parse(stdout) as { kind: string }).kind);
  }
  return kinds;
}

const DAY_MS = 86_400_000;

describe('the doorbell with its camera (real GStreamer, sim hardware)', () => {
  test('a press rings, names a snapshot, and yields an encrypted pre-roll clip the owner can play', async () => {
    await h.waitForEvent(
      (e) => e.event.mediaHealth?.state === 'preroll-ready',
      30_000,
      'the ring holding a full pre-roll',
    );
    const rings = (await wires.chimeHistory()).filter((c) => c.on).length;
    await wires.press(100);
    const pressed = await h.waitForEvent((e) => e.event.kind === 'buttonPressed', 5000, 'the press');
    const snapshotId = pressed.event.buttonPressed?.snapshotId ?? '';
    assert.match(snapshotId, /^\d{13}-[0-9a-f]{12}$/);
    assert.equal((await wires.chimeHistory()).filter((c) => c.on).length, rings + 1, 'it rang');

    const recorded = await h.waitForEvent((e) => e.event.kind === 'clipRecorded', 30_000, 'the clip');
    const clip = recorded.event.clipRecorded;
    assert.ok(clip);
    assert.equal(clip.reason, 'press');
    assert.match(clip.clipId ?? '', /^\d{13}-[0-9a-f]{12}$/, "the store's own id");
    const trigger = Number(clip.triggerMs);
    assert.ok(
      Number(clip.startMs) <= trigger - PREROLL_S * 1000 + SEGMENT_S * 1000,
      'the clip starts before the press',
    );

    // Only the owner's key opens it (the Debian age command), and ffprobe reads the result.
    const file = await storedFile(clip.clipId ?? '');
    const stored = await readFile(file);
    assert.equal(stored.subarray(0, 21).toString(), 'age-encryption.org/v1');
    assert.equal(stored.length, Number(clip.bytes));
    const mp4 = join(keys, 'clip.mp4');
    await run('age', ['-d', '-i', ownerIdentity, '-o', mp4, file]);
    const probe = await run('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'format=duration',
      '-of',
      'csv=p=0',
      mp4,
    ]);
    const duration = Number(probe.stdout.trim());
    const expected = (Number(clip.endMs) - Number(clip.startMs)) / 1000;
    assert.ok(Math.abs(duration - expected) <= 1, `duration ${duration} s, expected ${expected} s`);

    const snapshot = join(keys, 'snapshot.jpg');
    await run('age', ['-d', '-i', ownerIdentity, '-o', snapshot, await storedFile(snapshotId)]);
    const jpeg = await readFile(snapshot);
    assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], 'a JPEG');
  });

  test('the card tells nothing of when anyone rang: names, index and dates show only the day; the trigger and times are sealed to the owner', async () => {
    // The press of the test before is stored: its clip and snapshot.
    const pressed = h.hub.events.find((e) => e.event.kind === 'buttonPressed')?.event.buttonPressed;
    const clip = h.hub.events.find((e) => e.event.kind === 'clipRecorded')?.event.clipRecorded;
    assert.ok(pressed && clip, 'the first test stored a press clip');
    const pressMs = Number(pressed.pressedAtMs);
    const times = [pressMs, Number(clip.startMs), Number(clip.endMs), Number(clip.triggerMs)];
    const names = await readdir(clipsDir());
    const index = await readFile(join(clipsDir(), 'index.json'), 'utf8');
    const plaintext = [...names, index].join('\n');
    for (const word of ['press', 'motion', 'snapshot', 'clip', 'trigger', 'startMs', 'endMs'])
      assert.ok(!plaintext.includes(word), `"${word}" is not in a file name or the index`);
    // Every number of 10+ digits (a time in s or ms) is a UTC day boundary; none is within a
    // minute of the press in seconds or milliseconds, or its ISO form.
    // (Not digit runs inside a hash or an id's random part: those are bounded by hex digits or a dash.)
    for (const m of plaintext.matchAll(/(?<![0-9a-f-])\d{10,}(?![0-9a-f])/g)) {
      const n = Number(m[0]);
      if (/^0{3}/.test(m[0])) continue; // an id's sequence number: zero-padded and small
      assert.equal(
        n % DAY_MS,
        0,
        `${m[0]} in ${plaintext.slice(Math.max(0, m.index - 40), m.index + 20)} is not a day boundary`,
      );
    }
    for (const t of times) {
      for (const form of [String(t), String(Math.floor(t / 1000)), new Date(t).toISOString().slice(0, 16)])
        assert.ok(!plaintext.includes(form), `${form} (a clip time) is not in plaintext`);
    }
    // The dates `ls -l` shows are the day too.
    for (const n of names.filter((f) => f.endsWith('.age'))) {
      const { mtimeMs } = await stat(join(clipsDir(), n));
      assert.equal(mtimeMs % DAY_MS, 0, `${n} is dated ${new Date(mtimeMs).toISOString()}`);
    }
    // The audit log names what was stored, not what set it off.
    const audit = await readFile(join(h.dir, 'device', 'audit', 'log.jsonl'), 'utf8');
    const created = audit.split('\n').filter((l) => l.includes('.created'));
    assert.ok(created.length >= 2, 'the clip and the snapshot are in the audit log');
    for (const l of created) assert.ok(!/press|motion|reason/.test(l), l);
    // The owner's key (the stock age command) opens what is sealed.
    const meta = JSON.parse(
      (
        await run('age', [
          '-d',
          '-i',
          ownerIdentity,
          (await storedFile(clip.clipId ?? '')).replace(/\.age$/, '.meta.age'),
        ])
      ).stdout,
    );
    assert.deepEqual(
      [meta.kind, meta.reason, meta.startMs, meta.endMs, meta.triggerMs],
      ['clip', 'press', Number(clip.startMs), Number(clip.endMs), Number(clip.triggerMs)],
    );
  });

  test('the moving test pattern is reported as motion', async () => {
    const motion = await h.waitForEvent((e) => e.event.kind === 'motionStarted', 15_000, 'motion');
    assert.equal(motion.event.motionStarted?.zone, 'frame');
  });

  test('kill -9 of the media worker: presses during the outage ring, and the camera comes back', async (t) => {
    const pid = h.device.mediaWorkerPid;
    assert.ok(pid, 'the worker runs');
    const upsBefore = h.hub.events.filter((e) => e.event.mediaHealth?.state === 'pipeline-up').length;
    const ringsBefore = (await wires.chimeHistory()).filter((c) => c.on).length;
    const rangBefore = h.hub.events.filter((e) => e.event.chimeRang?.rang).length;
    process.kill(pid, 'SIGKILL');
    await wires.press(80, 50); // released 50 ms, longer than minPressMs: the next press is its own
    await wires.press(80);
    const history = (await wires.chimeHistory()).filter((c) => c.on);
    assert.equal(history.length, ringsBefore + 2, 'both presses rang while the camera was down');
    // Measured, not asserted (tests never assert speed): the device's own press -> chime times.
    const rangEvents = () => h.hub.events.filter((e) => e.event.chimeRang?.rang);
    await h.waitForEvent(() => rangEvents().length >= rangBefore + 2, 5000, 'the two ChimeRang events');
    const rang = rangEvents().slice(rangBefore, rangBefore + 2);
    t.diagnostic(
      `press -> chime during the outage: ${rang.map((e) => `${e.event.chimeRang?.pressToChimeUs} µs`).join(', ')}`,
    );
    await h.waitForEvent(
      (e) => e.event.mediaHealth?.state === 'restart-scheduled',
      10_000,
      'the restart being reported',
    );
    await h.waitForEvent(
      () => h.hub.events.filter((e) => e.event.mediaHealth?.state === 'pipeline-up').length > upsBefore,
      30_000,
      'the pipeline up again',
    );
    assert.notEqual(h.device.mediaWorkerPid, pid);
  });

  // Last: it stops the doorbell.
  test('a press just before the doorbell stops still stores its snapshot', async () => {
    // Snapshots flow again after the previous test's restart once a press names one.
    let named = false;
    let snapshotId = '';
    for (let attempt = 0; attempt < 10 && !named; attempt++) {
      const pressesBefore = h.hub.events.filter((e) => e.event.kind === 'buttonPressed').length;
      await wires.press(100, 50);
      await h.waitForEvent(
        () => h.hub.events.filter((e) => e.event.kind === 'buttonPressed').length > pressesBefore,
        5000,
        'a press event',
      );
      snapshotId =
        h.hub.events.filter((e) => e.event.kind === 'buttonPressed').at(-1)?.event.buttonPressed
          ?.snapshotId ?? '';
      named = snapshotId !== '';
    }
    assert.ok(named, 'snapshots are being taken');
    // The named snapshot's write has ended once its file is in the store.
    await waitFor(
      async () => (await readdir(clipsDir())).some((f) => f.startsWith(`${snapshotId}_`)),
      'the named snapshot stored',
      10_000,
    );
    const snapshots = async () => (await sealedKinds()).filter((k) => k === 'snapshot').length;
    const before = await snapshots();
    // Stop as soon as the chime rings: the snapshot's write is still waiting
    // for the press event to be on its way.
    const stopped = new Promise<void>((resolve, reject) => {
      const off = wires.onChime((on) => {
        if (!on) return;
        off();
        h.device.stop().then(resolve, reject);
      });
    });
    await Promise.all([wires.press(100).catch(() => undefined), stopped]);
    assert.equal(await snapshots(), before + 1, 'the snapshot of the last press is stored');
  });
});
