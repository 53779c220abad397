import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { connectWires, type WireClient } from '../hal/sim/wire-client.js';
import { doorbell, loadOrCreateSigningKey, publicKeyToText, topicsFor } from '../proto/index.js';
import { docCommand, runDocCommand, withValues } from '../test-support/doc-commands.js';
import { type Harness, startHarness } from '../test-support/doorbell-harness.js';
import { runCli } from '../test-support/run-cli.js';
import { FetchError, fetchItem } from './footage/fetch.js';
import { splitHeader } from './footage/rewrap.js';
import { FootageStore } from './footage/store.js';
import { addDevice, hubKeyPath, ownerKeyPath, setDeviceHubRole } from './hub-state.js';

const run = promisify(execFile);

/**
 * Footage from a doorbell with a real camera pipeline (GStreamer test source)
 * to the owner's machine: listed with signed commands, fetched as signed
 * chunks over a real Mosquitto into the hub's content-addressed store,
 * decrypted with the owner's identity. Oracles: the `age` command,
 * `sha256sum`, ffprobe.
 */
let broker: RunningBroker;
let h: Harness;
let wires: WireClient;
let keys: string;
let hubState: string;
let ownerIdentity: string;
let recipient: string;
let clipId: string;
let clipSha: string;

/** A documented command, run as written with the hub's state and broker from the environment. */
async function docRun(text: string) {
  const step = runDocCommand(text, {
    env: { DOORBELL_HUB_STATE: hubState, DOORBELL_HUB_BROKER: broker.url },
  });
  const code = await step.exited(60_000);
  return { code, stdout: step.stdout, stderr: step.stderr };
}

const hub = (args: string[]) =>
  runCli('hub/cli.ts', [...args, '--broker', broker.url, '--state-dir', hubState], 60_000);

before(async () => {
  broker = await startMosquitto();
  keys = await mkdtemp(join(tmpdir(), 'doorbell-footage-'));
  hubState = join(keys, 'hub');
  ownerIdentity = join(keys, 'owner.txt');
  await run('age-keygen', ['-o', ownerIdentity]);
  recipient = (await run('age-keygen', ['-y', ownerIdentity])).stdout.trim();
  const { key: hubKey } = await loadOrCreateSigningKey(hubKeyPath(hubState));
  h = await startHarness(
    broker.url,
    {
      hal: { button: { lockoutMs: 0 }, chime: { pulseMs: 50, minGapMs: 0 } },
      media: {
        enabled: true,
        camera: {
          // Noise does not compress: the clip is many chunks long.
          source: { kind: 'test', pattern: 'snow' },
          width: 320,
          height: 240,
          fps: 10,
          bitrateKbps: 800,
          segmentS: 1,
          prerollS: 1,
          postrollS: 1,
          ringDir: join('/dev/shm', `doorbell-footage-ring-${process.pid}`),
        },
        recordMotion: false,
        store: { recipients: [recipient] },
      },
      trust: { hubRole: 'administer' },
    },
    hubKey,
  );
  await addDevice(hubState, h.device.deviceId, publicKeyToText(h.device.key), false);
  wires = await connectWires(h.device.simSocket ?? '');
  await h.waitForEvent((e) => e.event.mediaHealth?.state === 'preroll-ready', 30_000, 'a full pre-roll');
  await wires.press(100);
  const recorded = await h.waitForEvent((e) => e.event.kind === 'clipRecorded', 30_000, 'the clip');
  clipId = recorded.event.clipRecorded?.clipId ?? '';
  clipSha = recorded.event.clipRecorded?.sha256 ?? '';
});

after(async () => {
  await wires?.close();
  await h?.stop();
  await broker?.stop();
  await rm(keys, { recursive: true, force: true });
});

describe('footage reaches its owner', { timeout: 180_000 }, () => {
  test('clips lists what the clip events announced (id, size, SHA-256); with the owner identity also kind, trigger and the recipient fingerprint, and filters', async () => {
    const listed = await docRun(
      docCommand('docs/footage.md', 'npm run doorbell-hub -- clips front-door').text,
    );
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${clipId} +\\d+ +${clipSha.slice(0, 16)} `, 'm'));
    assert.doesNotMatch(listed.stdout, /press|motion/, 'without the identity nobody learns the trigger');
    const blind = await hub(['clips', 'front-door', '--json']);
    assert.equal(blind.code, 0, blind.stderr);
    const blindClip = blind.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((i) => i.id === clipId);
    assert.deepEqual(Object.keys(blindClip).sort(), ['bytes', 'deviceId', 'expiresMs', 'id', 'sha256']);

    const documented = docCommand('docs/footage.md', 'npm run doorbell-hub -- clips front-door --identity');
    const pressOnly = await docRun(withValues(documented, { 'owner.txt': ownerIdentity }));
    assert.equal(pressOnly.code, 0, pressOnly.stderr);
    assert.match(pressOnly.stdout, new RegExp(`^${clipId} .* clip +press `, 'm'));
    assert.doesNotMatch(pressOnly.stdout, / snapshot /, '--reason press leaves the snapshot out');

    const r = await hub(['clips', 'front-door', '--json', '--identity', ownerIdentity]);
    assert.equal(r.code, 0, r.stderr);
    const items = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const clip = items.find((i) => i.id === clipId);
    assert.ok(clip, `clip ${clipId} listed: ${r.stdout}`);
    assert.equal(clip.kind, 'clip');
    assert.equal(clip.reason, 'press');
    assert.equal(clip.sha256, clipSha, 'the index and the ClipRecorded event agree');
    const file = (await readdir(join(h.dir, 'device', 'clips'))).find(
      (f) => f.startsWith(`${clipId}_`) && !f.endsWith('.meta.age'),
    );
    assert.ok(file);
    const onDisk = (await run('sha256sum', [join(h.dir, 'device', 'clips', file)])).stdout;
    assert.equal(onDisk.slice(0, 64), clipSha, 'sha256sum of the stored file');
    const fingerprint = (
      await run('sh', ['-c', `printf %s '${recipient}' | sha256sum | cut -c1-16`])
    ).stdout.trim();
    assert.deepEqual(clip.recipients, [fingerprint]);
    assert.ok(
      items.some((i) => i.kind === 'snapshot'),
      'the press snapshot is listed too',
    );

    const onlySnapshots = await hub([
      'clips',
      'front-door',
      '--json',
      '--kind',
      'snapshot',
      '--identity',
      ownerIdentity,
    ]);
    const kinds = new Set(
      onlySnapshots.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).kind),
    );
    assert.deepEqual([...kinds], ['snapshot']);
    const future = await hub([
      'clips',
      'front-door',
      '--json',
      '--identity',
      ownerIdentity,
      '--since',
      String(Date.now() + 3_600_000),
    ]);
    assert.equal(future.code, 0, future.stderr);
    assert.equal(future.stdout, '', 'nothing overlaps an hour from now');
    const noKey = await hub(['clips', 'front-door', '--kind', 'snapshot']);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /need --identity/);
  });

  test('clip get fetches, checks the hash, and decrypts with the owner identity; age -d agrees and ffprobe plays it', async () => {
    const out = join(keys, 'clip.mp4');
    const documented = docCommand(
      'docs/footage.md',
      'npm run doorbell-hub -- clip get 0000000000042-0a1b2c3d4e5f --identity',
    );
    const r = await docRun(
      withValues(documented, {
        '0000000000042-0a1b2c3d4e5f': clipId,
        'owner.txt': ownerIdentity,
        'clip.mp4': out,
      }),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`${clipId}: \\d+ bytes fetched; SHA-256 checked; wrote ${out}`));

    const object = join(hubState, 'footage', 'objects', `${clipSha}.age`);
    assert.equal(
      (await run('sha256sum', [object])).stdout.slice(0, 64),
      clipSha,
      'the hub keeps the ciphertext under its hash',
    );
    const byAge = await run('age', ['-d', '-i', ownerIdentity, object], {
      encoding: 'buffer',
      maxBuffer: 64 << 20,
    });
    assert.deepEqual(byAge.stdout, await readFile(out), 'stock age decrypts the same plaintext');
    const probe = await run('ffprobe', [
      '-v',
      'error',
      '-show_entries',
      'format=duration',
      '-of',
      'csv=p=0',
      out,
    ]);
    assert.ok(Number(probe.stdout) > 1, `ffprobe duration ${probe.stdout}`);

    const raw = docCommand(
      'docs/footage.md',
      'npm run doorbell-hub -- clip get 0000000000042-0a1b2c3d4e5f --raw',
    );
    const rawOut = join(keys, 'clip.mp4.age');
    const again = await docRun(
      withValues(raw, { '0000000000042-0a1b2c3d4e5f': clipId, 'clip.mp4.age': rawOut }),
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already on this hub/, 'a second get is served from the hub store');
    assert.deepEqual(await readFile(rawOut), await readFile(object));
  });

  test('a third identity cannot decrypt: clip get fails, keeps the ciphertext and writes no plaintext', async () => {
    const stranger = join(keys, 'stranger.txt');
    await run('age-keygen', ['-o', stranger]);
    const out = join(keys, 'stranger.mp4');
    const r = await hub(['clip', 'get', clipId, '--identity', stranger, '-o', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /none of the given identities is a recipient/);
    await assert.rejects(stat(out), /ENOENT/);
    await assert.rejects(stat(`${out}.part`), /ENOENT/);
  });

  test('an interrupted fetch resumes from the partial file; a partial file with wrong bytes is caught by the hash and discarded', async () => {
    const store = new FootageStore(join(keys, 'resume-hub'));
    const { session, snapshotId } = await fetchSession();
    try {
      // Stop after three chunks, as a hub crash would.
      const abort = new AbortController();
      let chunks = 0;
      const first = fetchItem({
        ...session,
        store,
        itemId: clipId,
        windowBytes: 12_288 * 2,
        signal: abort.signal,
        onProgress: (n) => {
          if (n > 0 && ++chunks === 3) abort.abort();
        },
      });
      await assert.rejects(first, (e: unknown) => e instanceof FetchError && e.kind === 'aborted');
      const partial = store.partialPath('front-door', clipId);
      const kept = (await stat(partial)).size;
      assert.ok(kept > 0, 'bytes kept');

      const second = await fetchItem({ ...session, store, itemId: clipId });
      assert.equal(second.resumedAt, kept, 'resumed where the first stopped');
      assert.equal(second.transferred, second.entry.bytes - kept);
      assert.equal(second.entry.sha256, clipSha);

      // A partial file whose bytes were altered: the whole-file hash refuses it and nothing is kept.
      const other = new FootageStore(join(keys, 'tampered-hub'));
      const full = await readFile(second.path);
      const tampered = Buffer.from(full.subarray(0, 20_000));
      tampered[100] = (tampered[100] ?? 0) ^ 0xff;
      const p = other.partialPath('front-door', clipId);
      await run('mkdir', ['-p', join(p, '..')]);
      await writeFile(p, tampered);
      await assert.rejects(
        fetchItem({ ...session, store: other, itemId: clipId }),
        (e: unknown) => e instanceof FetchError && e.kind === 'hash-mismatch',
      );
      await assert.rejects(stat(p), /ENOENT/, 'the partial file is gone');
      assert.equal(await other.has(clipSha), false, 'no object kept');

      // A snapshot travels the same way.
      const snap = await fetchItem({ ...session, store, itemId: snapshotId });
      const metaFile = join(keys, 'snapshot.meta.age');
      await writeFile(metaFile, Buffer.from(snap.entry.meta ?? '', 'base64'));
      const snapMeta = await run('age', ['-d', '-i', ownerIdentity, metaFile]);
      assert.equal(
        JSON.parse(snapMeta.stdout).kind,
        'snapshot',
        'its sealed metadata came along, for the owner',
      );
      const jpeg = await run('age', ['-d', '-i', ownerIdentity, snap.path], { encoding: 'buffer' });
      assert.deepEqual([...jpeg.stdout.subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
    } finally {
      await session.close();
    }
  });

  test('a broker restart in the middle of a transfer: the fetch asks again from where it is and completes', async () => {
    const store = new FootageStore(join(keys, 'restart-hub'));
    const { session } = await fetchSession();
    try {
      let restart: Promise<void> | undefined;
      let atRestart = 0;
      const got = await fetchItem({
        ...session,
        store,
        itemId: clipId,
        windowBytes: 12_288 * 2,
        chunkGapMs: 300,
        stallTimeoutMs: 30_000,
        onProgress: (n, total) => {
          if (restart === undefined && n >= 3 * 12_288 && n < total) {
            atRestart = n;
            restart = (async () => {
              const port = broker.port;
              await broker.stop();
              broker = await startMosquitto({ port });
            })();
          }
        },
      });
      assert.ok(restart, 'the broker was restarted during the transfer');
      await restart;
      assert.ok(
        atRestart > 0 && atRestart < got.entry.bytes,
        `restarted at ${atRestart} of ${got.entry.bytes}`,
      );
      assert.equal(got.entry.sha256, clipSha);
      assert.equal(got.resumedAt, 0);
      assert.equal((await run('sha256sum', [got.path])).stdout.slice(0, 64), clipSha);
    } finally {
      await session.close();
    }
  });

  test('a key the device does not know gets a signed refusal and not one chunk', async () => {
    const { session } = await fetchSession();
    try {
      // A key the device does not know: refused before anything is read, nothing on the data topic.
      const { Commander } = await import('./commander.js');
      const { CounterStore, generateSigningKey } = await import('../proto/index.js');
      const strangerCids: string[] = [];
      const stranger = new Commander({
        connection: h.hub.connection,
        watcher: h.hub.watcher,
        key: generateSigningKey(),
        counters: await CounterStore.open(join(keys, 'stranger-counter')),
        logger: silentLogger(),
      });
      const chunksFor = new Map<string, number>();
      const count = (e: { channel: string; correlationId: string }) => {
        if (e.channel === 'data') chunksFor.set(e.correlationId, (chunksFor.get(e.correlationId) ?? 0) + 1);
      };
      session.watcher.on('event', count);
      // Before its signature verified nothing of a stranger's command is trusted, its correlation
      // id included: the signed refusal names none, so it is awaited by its kind.
      const before = h.hub.events.length;
      const sent = stranger
        .send('front-door', { fetchItem: { itemId: clipId } }, 3000, {
          onCorrelationId: (c) => strangerCids.push(c),
        })
        .catch((err: Error) => err);
      await h.waitForEvent(
        (e) =>
          h.hub.events.indexOf(e) >= before &&
          e.event.commandResult?.errorKind === doorbell.v1.ErrorKind.UNKNOWN_KEY,
        5000,
        "the device's refusal of the stranger",
      );
      assert.match(String(await sent), /no result/, 'the refusal carries no correlation id to match');
      // A fetch sent after the refusal: its chunks come after any the stranger's could have.
      const later = await fetchItem({
        ...session,
        store: new FootageStore(join(keys, 'after-stranger')),
        itemId: clipId,
      });
      session.watcher.off('event', count);
      assert.equal(later.entry.sha256, clipSha);
      for (const c of strangerCids) assert.equal(chunksFor.get(c) ?? 0, 0, 'no chunk answered the stranger');
    } finally {
      await session.close();
    }
  });

  test('a press during a flood of fetches still rings and its event arrives', async () => {
    const { session } = await fetchSession();
    try {
      // Two hubs' worth of fetches at once, over and over: more than the device's two windows.
      const flood = Array.from({ length: 4 }, (_, i) =>
        fetchItem({
          ...session,
          store: new FootageStore(join(keys, `flood-${i}`)),
          itemId: clipId,
          windowBytes: 12_288,
          chunkGapMs: 200,
        }),
      );
      await h.chimeOff();
      const rings = (await wires.chimeHistory()).filter((c) => c.on).length;
      const presses = h.hub.events.filter((e) => e.event.kind === 'buttonPressed').length;
      await wires.press(100);
      await h.waitForEvent(
        (e) =>
          e.event.kind === 'buttonPressed' &&
          h.hub.events.filter((x) => x.event.kind === 'buttonPressed').length > presses,
        10_000,
        'the press event during the transfers',
      );
      assert.equal((await wires.chimeHistory()).filter((c) => c.on).length, rings + 1, 'it rang');
      for (const f of await Promise.all(flood)) assert.equal(f.entry.sha256, clipSha);
    } finally {
      await session.close();
    }
  });

  test('an unknown item is NOT_FOUND and leaves no partial file', async () => {
    const store = new FootageStore(join(keys, 'unknown-hub'));
    const { session } = await fetchSession();
    try {
      const missing = '0000000000001-000000000000';
      await assert.rejects(
        fetchItem({ ...session, store, itemId: missing }),
        (e: unknown) => e instanceof FetchError && e.kind === 'not-found',
      );
      await assert.rejects(stat(store.partialPath('front-door', missing)), /ENOENT/);
    } finally {
      await session.close();
    }
  });
});

describe('sharing by consent', { timeout: 180_000 }, () => {
  test('approve re-addresses exactly the approved clip to the requester, the doorbell logs it, and share verify checks the package offline', async () => {
    await setDeviceHubRole(hubState, 'front-door', 'administer');
    await loadOrCreateSigningKey(ownerKeyPath(hubState));
    const requester = join(keys, 'requester.txt');
    await run('age-keygen', ['-o', requester]);
    const requesterRecipient = (await run('age-keygen', ['-y', requester])).stdout.trim();
    const listedClip = JSON.parse(
      (await hub(['clips', 'front-door', '--json', '--identity', ownerIdentity])).stdout
        .trim()
        .split('\n')
        .find((l) => l.includes(clipId)) ?? '{}',
    );
    const fileRequest = async (since: number, until: number) => {
      const r = await hub([
        'share',
        'request',
        'front-door',
        '--name',
        'insurer',
        '--reason',
        'claim 42',
        '--since',
        String(since),
        '--until',
        String(until),
        '--recipient',
        requesterRecipient,
        '--json',
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return JSON.parse(r.stdout).id as string;
    };
    // A request for another day: the clip is outside its window, nothing is approved or written.
    const elsewhere = await fileRequest(1_000, 2_000);
    const outside = join(keys, 'outside-package');
    const refused = await hub([
      'share',
      'approve',
      elsewhere,
      '--clips',
      clipId,
      '--identity',
      ownerIdentity,
      '-o',
      outside,
    ]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /not stored within the request's window/);
    await assert.rejects(stat(outside), /ENOENT/);

    const id = await fileRequest(listedClip.startMs - 1000, listedClip.endMs + 1000);
    const pkg = join(keys, 'package');
    const approved = await hub([
      'share',
      'approve',
      id,
      '--clips',
      clipId,
      '--identity',
      ownerIdentity,
      '-o',
      pkg,
    ]);
    assert.equal(approved.code, 0, approved.stdout + approved.stderr);
    const verified = await hub(['share', 'verify', pkg, '--json']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.deepEqual(JSON.parse(verified.stdout).items, [clipId]);

    // The stock age command: the requester reads it, a stranger and the owner's own key do not.
    const shared = join(pkg, 'clips', `${clipId}.age`);
    const plain = await run('age', ['-d', '-i', requester, shared], {
      encoding: 'buffer',
      maxBuffer: 64 << 20,
    });
    const owners = await run(
      'age',
      ['-d', '-i', ownerIdentity, join(hubState, 'footage', 'objects', `${clipSha}.age`)],
      {
        encoding: 'buffer',
        maxBuffer: 64 << 20,
      },
    );
    assert.deepEqual(plain.stdout, owners.stdout, 'the requester gets the same clip');
    const stranger = join(keys, 'stranger.txt');
    await assert.rejects(
      run('age', ['-d', '-i', stranger, shared], { encoding: 'buffer' }),
      /no identity matched/,
    );
    await assert.rejects(
      run('age', ['-d', '-i', ownerIdentity, shared], { encoding: 'buffer' }),
      /no identity matched/,
    );
    const original = await readFile(join(hubState, 'footage', 'objects', `${clipSha}.age`));
    const copy = await readFile(shared);
    assert.ok(
      original
        .subarray(splitHeader(original).payloadOffset)
        .equals(copy.subarray(splitHeader(copy).payloadOffset)),
      'the payload is the stored one, byte for byte',
    );

    // Any change to the package is caught.
    const json = join(pkg, 'approval.json');
    const text = await readFile(json, 'utf8');
    await writeFile(json, text.replace('"expiresAtMs": ', '"expiresAtMs": 9'));
    const bent = await hub(['share', 'verify', pkg]);
    assert.equal(bent.code, 1);
    assert.match(bent.stdout, /NOT VERIFIED: approval.sig is not the owner's signature/);
    await writeFile(json, text);
    await rm(shared);
    const short = await hub(['share', 'verify', pkg]);
    assert.equal(short.code, 1);
    assert.match(short.stdout, /NOT VERIFIED: the package holds nothing/);
  });
});

describe('resuming', { timeout: 180_000 }, () => {
  test('a doorbell restart in the middle of a transfer: the fetch waits for its clip store and completes', async () => {
    const store = new FootageStore(join(keys, 'device-restart-hub'));
    const { session } = await fetchSession();
    try {
      let restart: Promise<void> | undefined;
      let atRestart = 0;
      const got = await fetchItem({
        ...session,
        store,
        itemId: clipId,
        windowBytes: 12_288 * 2,
        chunkGapMs: 300,
        stallTimeoutMs: 60_000,
        commandTimeoutMs: 2_000,
        onProgress: (n, total) => {
          if (restart === undefined && n >= 3 * 12_288 && n < total) {
            atRestart = n;
            restart = h.restartDevice();
          }
        },
      });
      assert.ok(restart, 'the doorbell was restarted during the transfer');
      await restart;
      assert.ok(
        atRestart > 0 && atRestart < got.entry.bytes,
        `restarted at ${atRestart} of ${got.entry.bytes}`,
      );
      assert.equal(got.entry.sha256, clipSha);
      assert.equal((await run('sha256sum', [got.path])).stdout.slice(0, 64), clipSha);
    } finally {
      await session.close();
      await wires.close();
      wires = await connectWires(h.device.simSocket ?? '');
    }
  });
});

describe('deletion', { timeout: 120_000 }, () => {
  test('clip delete removes the clip on the doorbell and on the hub, and the doorbell logs who deleted it', async () => {
    await setDeviceHubRole(hubState, 'front-door', 'administer');
    const object = join(hubState, 'footage', 'objects', `${clipSha}.age`);
    assert.ok((await stat(object)).isFile(), 'fetched by an earlier test');
    const documented = docCommand('docs/footage.md', 'npm run doorbell-hub -- clip delete');
    const r = await docRun(withValues(documented, { '0000000000042-0a1b2c3d4e5f': clipId }));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /deleted on front-door: 1 \(not stored there: 0\); deleted on this hub: 1/);
    await assert.rejects(stat(object), /ENOENT/, 'the hub keeps no copy');
    const listed = await hub(['clips', 'front-door', '--json']);
    assert.ok(!listed.stdout.includes(clipId), 'the doorbell no longer lists it');
    const log = await hub(['audit', 'front-door']);
    assert.equal(log.code, 0, log.stdout + log.stderr);
    assert.match(log.stdout, new RegExp(`item\\.deleted  id=${clipId} by=${h.hubKey.keyId}`));
    // Reads are logged once a minute per key: the first, a listing, names the hub key.
    assert.match(log.stdout, new RegExp(`footage\\.listed .*by=${h.hubKey.keyId}`));
  });
});

/** A hub session subscribed to the device's data topic, and the press snapshot's id. */
async function fetchSession() {
  const { openCommandSession } = await import('./session.js');
  const { loadDevices } = await import('./hub-state.js');
  const s = await openCommandSession({
    stateDir: hubState,
    broker: broker.url,
    tls: {},
    logger: silentLogger(),
    devices: await loadDevices(hubState),
    as: 'hub',
    connectTimeoutMs: 10_000,
    clientPurpose: 'test',
    extraSubscriptions: [topicsFor('front-door').data],
  });
  const snapshot = h.hub.events.find((e) => e.event.kind === 'buttonPressed');
  const snapshotId = snapshot?.event.buttonPressed?.snapshotId ?? '';
  return {
    snapshotId,
    session: {
      commander: s.commander,
      watcher: s.watcher,
      deviceId: 'front-door',
      logger: silentLogger(),
      close: () => s.close(),
    },
  };
}
