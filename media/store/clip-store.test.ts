import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { recipientFingerprint } from '../../proto/age-recipient.js';
import { StoreError } from './clip-store.js';
import { storeConfigSchema } from './config.js';
import { ageDecrypt, ageKeygen, clipBytes, openStore, tempDir, writeIdentity } from './test-helpers.js';

const MARKER = 'PLAINTEXT-MARKER-0123456789';

async function* chunks(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('ClipStore: encrypted to the owner, readable by age', () => {
  it('a stored clip decrypts with the Debian age command to the same bytes; a key not on the list cannot', async (t) => {
    const dir = tempDir(t);
    const owner = ageKeygen(dir, 'owner');
    const stranger = ageKeygen(dir, 'stranger');
    const { store, events } = await openStore(t, { dir: join(dir, 'store'), recipients: [owner.recipient] });
    const plaintext = clipBytes(3 * 1024 * 1024 + 17, MARKER); // several 64 KiB STREAM chunks, odd tail
    const item = await store.writeClip(
      { reason: 'press', startMs: 1_000, endMs: 16_000, triggerMs: 6_000 },
      plaintext,
    );

    const stored = readFileSync(item.path);
    assert.equal(item.bytes, stored.length);
    assert.equal(item.sha256, createHash('sha256').update(stored).digest('hex'));
    assert.ok(stored.subarray(0, 22).toString('latin1').startsWith('age-encryption.org/v1\n'));
    assert.equal(stored.indexOf(Buffer.from(MARKER)), -1, 'the stored file never contains the plaintext');

    const ok = ageDecrypt(owner.identityFile, item.path);
    assert.equal(ok.status, 0, ok.stderr);
    assert.ok(Buffer.from(plaintext).equals(ok.stdout), 'decrypted bytes equal the plaintext');

    const denied = ageDecrypt(stranger.identityFile, item.path);
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /no identity matched/);

    // What it is and when it was recorded: sealed beside it, to the same recipients only.
    assert.ok(item.metaPath);
    const meta = ageDecrypt(owner.identityFile, item.metaPath);
    assert.equal(meta.status, 0, meta.stderr);
    assert.deepEqual(JSON.parse(meta.stdout.toString('utf8')), {
      v: 1,
      id: item.id,
      kind: 'clip',
      reason: 'press',
      reasons: ['press'],
      startMs: 1_000,
      endMs: 16_000,
      triggerMs: 6_000,
      truncated: false,
      sha256: item.sha256,
      recipients: [recipientFingerprint(owner.recipient)],
    });
    assert.notEqual(ageDecrypt(stranger.identityFile, item.metaPath).status, 0);

    assert.deepEqual(
      events.map((e) => e.type),
      ['stored'],
    );
    assert.deepEqual(store.list(), [item]);
  });

  it('with two recipients both decrypt; a streamed clip (async iterable) and a snapshot work too', async (t) => {
    const dir = tempDir(t);
    const a = ageKeygen(dir, 'a');
    const idB = await generateX25519Identity(); // the library's own key generation, for the second owner
    const b = { identityFile: writeIdentity(dir, 'b', idB), recipient: await identityToRecipient(idB) };
    const { store } = await openStore(t, { dir: join(dir, 'store'), recipients: [a.recipient, b.recipient] });

    const plaintext = clipBytes(700_001, MARKER);
    const clip = await store.writeClip(
      { reason: 'motion', startMs: 10, endMs: 20, triggerMs: 15 },
      chunks(plaintext, 50_000),
    );
    const jpeg = clipBytes(40_000, 'JPEG-MARKER');
    const snap = await store.writeSnapshot(jpeg, 123_456);
    const snapMeta = JSON.parse(ageDecrypt(b.identityFile, snap.metaPath ?? '').stdout.toString('utf8'));
    assert.equal(snapMeta.kind, 'snapshot');
    assert.equal(snapMeta.startMs, 123_456);

    for (const who of [a, b]) {
      const r = ageDecrypt(who.identityFile, clip.path);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(Buffer.from(plaintext).equals(r.stdout));
      const s = ageDecrypt(who.identityFile, snap.path);
      assert.equal(s.status, 0, s.stderr);
      assert.ok(Buffer.from(jpeg).equals(s.stdout));
    }
    assert.equal(readFileSync(snap.path).indexOf(Buffer.from('JPEG-MARKER')), -1);
    assert.deepEqual(
      store.list().map((i) => i.id),
      [clip.id, snap.id],
    );
    assert.ok(clip.id < snap.id, 'ids sort by time');
  });

  it('an empty clip is stored and decrypts to nothing', async (t) => {
    const dir = tempDir(t);
    const owner = ageKeygen(dir, 'owner');
    const { store } = await openStore(t, { dir: join(dir, 'store'), recipients: [owner.recipient] });
    const item = await store.writeClip(
      { reason: 'press', startMs: 0, endMs: 0, triggerMs: 0 },
      new Uint8Array(0),
    );
    const r = ageDecrypt(owner.identityFile, item.path);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.length, 0);
  });

  it('refuses bad input with a typed error and leaves no file behind', async (t) => {
    const dir = tempDir(t);
    const id = await generateX25519Identity();
    const storeDir = join(dir, 'store');
    const { store, events } = await openStore(t, {
      dir: storeDir,
      recipients: [await identityToRecipient(id)],
      maxClipBytes: 100_000,
      maxTotalBytes: 2 * 1024 * 1024,
    });
    const meta = { reason: 'press', startMs: 1, endMs: 2, triggerMs: 1 };
    const cases: [() => Promise<unknown>, string][] = [
      [() => store.writeClip(meta, new Uint8Array(100_001)), 'too-large'],
      [() => store.writeClip(meta, chunks(new Uint8Array(300_000), 30_000)), 'too-large'],
      [() => store.writeClip({ ...meta, reason: '../x' }, new Uint8Array(1)), 'invalid-meta'],
      [() => store.writeClip({ ...meta, startMs: 5 }, new Uint8Array(1)), 'invalid-meta'],
      [() => store.writeClip({ ...meta, endMs: Number.NaN }, new Uint8Array(1)), 'invalid-meta'],
      [
        () =>
          store.writeClip(
            meta,
            (async function* () {
              yield new Uint8Array(10_000);
              throw new Error('camera gone');
            })(),
          ),
        'source-failed',
      ],
    ];
    for (const [p, kind] of cases) {
      await assert.rejects(p(), (e: unknown) => e instanceof StoreError && e.kind === kind, kind);
    }
    assert.deepEqual(
      readdirSync(storeDir).filter((n) => n !== 'index.json'),
      [],
    );
    assert.equal(events.filter((e) => e.type === 'write-failed').length, cases.length);
    await store.stop();
    await assert.rejects(
      store.writeSnapshot(new Uint8Array(1), 1),
      (e: unknown) => e instanceof StoreError && e.kind === 'not-started',
    );
  });

  it('concurrent writes (press and motion clips, snapshots) are all stored and indexed', async (t) => {
    const dir = tempDir(t);
    const owner = ageKeygen(dir, 'owner');
    const storeDir = join(dir, 'store');
    const { store } = await openStore(t, { dir: storeDir, recipients: [owner.recipient] });
    const inputs = Array.from({ length: 6 }, (_, i) => clipBytes(100_000 + i * 70_000, `CONCURRENT-${i}`));
    const items = await Promise.all(
      inputs.map((p, i) =>
        i % 3 === 2
          ? store.writeSnapshot(p, i)
          : store.writeClip(
              { reason: i % 2 ? 'motion' : 'press', startMs: i, endMs: i + 1, triggerMs: i },
              chunks(p, 40_000),
            ),
      ),
    );
    assert.equal(new Set(items.map((i) => i.id)).size, 6);
    assert.deepEqual(
      store.list().map((i) => i.id),
      items.map((i) => i.id).sort(),
    );
    for (const [i, item] of items.entries()) {
      const r = ageDecrypt(owner.identityFile, item.path);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(Buffer.from(inputs[i] as Uint8Array).equals(r.stdout), `item ${i}`);
    }
    await store.stop();
    const index = JSON.parse(readFileSync(join(storeDir, 'index.json'), 'utf8')) as {
      entries: { id: string }[];
    };
    assert.deepEqual(
      index.entries.map((e) => e.id),
      items.map((i) => i.id).sort(),
    );
  });

  it('rebuilds a corrupt or missing index from the files, logs it, and removes stale partial files', async (t) => {
    const dir = tempDir(t);
    const id = await generateX25519Identity();
    const storeDir = join(dir, 'store');
    const config = { dir: storeDir, recipients: [await identityToRecipient(id)] };
    const first = await openStore(t, config);
    const a = await first.store.writeClip(
      { reason: 'press', startMs: 1, endMs: 2, triggerMs: 1 },
      clipBytes(5_000),
    );
    const b = await first.store.writeSnapshot(clipBytes(3_000), 7);
    await first.store.stop();
    const index = JSON.parse(readFileSync(join(storeDir, 'index.json'), 'utf8')) as { entries: unknown[] };
    assert.equal(index.entries.length, 2);

    writeFileSync(join(storeDir, 'index.json'), '{"version":1,"entries":[{"id":"nope"}]}');
    writeFileSync(join(storeDir, '.tmp-0000000000001-aaaaaaaaaaaa'), 'partial ciphertext');
    const second = await openStore(t, config);
    assert.deepEqual(second.store.list(), [a, b], 'sizes and hashes recomputed from the files');
    const rebuilt = second.events.find((e) => e.type === 'index-rebuilt');
    assert.ok(
      rebuilt?.type === 'index-rebuilt' && rebuilt.reason.includes('corrupt') && rebuilt.entries === 2,
    );
    assert.deepEqual(
      readdirSync(storeDir).sort(),
      [
        ...[a, b].flatMap((i) => [i.path, i.metaPath ?? '']).map((p) => p.slice(storeDir.length + 1)),
        'index.json',
      ].sort(),
    );
    await second.store.stop();

    // The index written by the rebuild is used as is on the next start (no rebuild event).
    const third = await openStore(t, config);
    assert.deepEqual(third.store.list(), [a, b]);
    assert.equal(third.events.length, 0);
  });
});

describe('ClipStore: deletion', () => {
  it('deletes the named items, file and index entry, survives a restart, and ignores unknown ids', async (t) => {
    const dir = tempDir(t);
    const id = await generateX25519Identity();
    const config = { dir: join(dir, 'store'), recipients: [await identityToRecipient(id)] };
    const first = await openStore(t, config);
    const a = await first.store.writeClip(
      { reason: 'press', startMs: 1, endMs: 2, triggerMs: 1 },
      clipBytes(100),
    );
    const b = await first.store.writeSnapshot(clipBytes(50), 3);
    assert.deepEqual(await first.store.delete([a.id, '0000000000001-000000000000']), [a.id]);
    assert.equal(existsSync(a.path), false, 'the file is gone');
    assert.deepEqual(
      first.events.filter((e) => e.type === 'deleted'),
      [{ type: 'deleted', ids: [a.id] }],
    );
    await first.store.stop();
    const second = await openStore(t, config);
    assert.deepEqual(
      second.store.list().map((i) => i.id),
      [b.id],
    );
  });
});

describe('ClipStore: recipients enrolled by pairing', () => {
  it('with no recipient at all nothing is stored; recipients added later (pairing) are used at the next write', async (t) => {
    const dir = tempDir(t);
    const owner = ageKeygen(dir, 'owner');
    const enrolled: string[] = [];
    const { store, events } = await openStore(t, { dir: join(dir, 'store') }, { recipients: () => enrolled });
    const meta = { reason: 'press', startMs: 1, endMs: 2, triggerMs: 1 };
    await assert.rejects(
      store.writeClip(meta, clipBytes(1000, MARKER)),
      (e: unknown) => e instanceof StoreError && e.kind === 'no-recipients',
    );
    assert.deepEqual(
      readdirSync(join(dir, 'store')).filter((f) => f.endsWith('.age')),
      [],
    );
    enrolled.push(owner.recipient);
    const item = await store.writeClip(meta, clipBytes(1000, MARKER));
    assert.equal(ageDecrypt(owner.identityFile, item.path).status, 0);
    assert.deepEqual(
      events.map((e) => e.type),
      ['write-failed', 'stored'],
    );
  });
});

describe('ClipStore: metadata from the clip recorder', () => {
  it("the store's own id names the file, whatever id and extra fields the caller's metadata carries; a restart lists it", async (t) => {
    const dir = tempDir(t);
    const owner = ageKeygen(dir, 'owner');
    const config = { dir: join(dir, 'store'), recipients: [owner.recipient] };
    const { store } = await openStore(t, config);
    const recorderMeta = {
      id: 'clip-mx0otmk5-ef8d661a',
      reason: 'press',
      reasons: ['press', 'motion'],
      triggerMs: 6_000,
      requestedStartMs: 1_000,
      requestedEndMs: 16_000,
      startMs: 1_000,
      endMs: 16_000,
      contentType: 'video/mp4',
      truncated: false,
    };
    const item = await store.writeClip(recorderMeta, clipBytes(1000, MARKER));
    assert.match(item.id, /^\d{13}-[0-9a-f]{12}$/);
    assert.ok(item.path.includes(item.id));
    assert.equal(Object.hasOwn(item, 'reasons'), false, 'no foreign fields in the index');
    await store.stop();
    const { store: reopened } = await openStore(t, config);
    assert.deepEqual(
      reopened.list().map((i) => i.id),
      [item.id],
    );
  });
});

describe('ClipStore: items of an earlier version (metadata in the file name)', () => {
  it('are converted at start: a sequence id, the store day, the metadata sealed to the owner; nothing in a name tells the time or trigger', async (t) => {
    const dir = tempDir(t);
    const owner = ageKeygen(dir, 'owner');
    const storeDir = join(dir, 'store');
    mkdirSync(storeDir, { mode: 0o700 });
    const storedAt = Date.now() - 3_600_000; // within the default retention
    const [start, end, trigger] = [storedAt - 10_000, storedAt - 1_000, storedAt - 5_000];
    const legacyName = `${storedAt}-0123456789ab_clip_press_${start}_${end}_${trigger}.age`;
    const plain = join(dir, 'plain.bin');
    writeFileSync(plain, clipBytes(20_000, MARKER));
    execFileSync('age', ['-r', owner.recipient, '-o', join(storeDir, legacyName), plain]);
    const legacyBytes = readFileSync(join(storeDir, legacyName));
    writeFileSync(join(storeDir, 'index.json'), '{"version":1,"entries":[]}');

    // Without a recipient it waits (and is not listed).
    const waiting = await openStore(t, { dir: storeDir, recipients: [] });
    assert.deepEqual(waiting.store.list(), []);
    await waiting.store.stop();
    assert.ok(readdirSync(storeDir).includes(legacyName));

    const { store } = await openStore(t, { dir: storeDir, recipients: [owner.recipient] });
    const [item, ...rest] = store.list();
    assert.ok(item && rest.length === 0, 'the one item is listed');
    assert.match(item.id, /^0000000000001-[0-9a-f]{12}$/);
    assert.equal(item.storedBucketMs, Math.floor(storedAt / 86_400_000) * 86_400_000);
    assert.equal(item.sha256, createHash('sha256').update(legacyBytes).digest('hex'));
    assert.deepEqual(readFileSync(item.path), legacyBytes, 'the ciphertext is untouched');
    const names = readdirSync(storeDir).sort();
    assert.deepEqual(names, [
      `${item.id}_${item.storedBucketMs}.age`,
      `${item.id}_${item.storedBucketMs}.meta.age`,
      'index.json',
    ]);
    assert.ok(!readFileSync(join(storeDir, 'index.json'), 'utf8').includes('press'));
    const meta = ageDecrypt(owner.identityFile, item.metaPath ?? '');
    assert.equal(meta.status, 0, meta.stderr);
    const m = JSON.parse(meta.stdout.toString('utf8'));
    assert.deepEqual(
      [m.id, m.kind, m.reason, m.startMs, m.endMs, m.triggerMs, m.sha256],
      [item.id, 'clip', 'press', start, end, trigger, item.sha256],
    );
    // The next item continues the sequence.
    const next = await store.writeSnapshot(clipBytes(1_000), 5);
    assert.match(next.id, /^0000000000002-/);
  });
});

describe('store config', () => {
  it('accepts age X25519 public keys and refuses anything else with a clear message', async () => {
    const good = await identityToRecipient(await generateX25519Identity());
    assert.equal(storeConfigSchema.safeParse({ recipients: [good] }).success, true);
    const flip = `${good.slice(0, -1)}${good.endsWith('q') ? 'p' : 'q'}`;
    const bad: [unknown, RegExp][] = [
      [[flip], /checksum/],
      [[good.toUpperCase()], /X25519 public key/],
      [['ssh-ed25519 AAAA'], /X25519 public key/],
      [[await generateX25519Identity()], /secret key/],
      [[`age1pq1${'q'.repeat(60)}`], /post-quantum/],
      [[good, good], /unique/],
    ];
    for (const [recipients, msg] of bad) {
      const r = storeConfigSchema.safeParse({ recipients });
      assert.equal(r.success, false, String(recipients));
      assert.match(r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n') ?? '', msg);
    }
    const big = storeConfigSchema.safeParse({
      recipients: [good],
      maxTotalBytes: 1024 * 1024,
      maxClipBytes: 1024 * 1024,
    });
    assert.equal(big.success, false);
    assert.equal(big.error?.issues[0]?.path.join('.'), 'maxClipBytes');
  });
});
