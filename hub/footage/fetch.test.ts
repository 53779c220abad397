import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../common/logger.js';
import { doorbell } from '../../proto/index.js';
import type { Commander } from '../commander.js';
import { EventWatcher, type VerifiedEvent } from '../event-watcher.js';
import { FetchError, fetchItem, MAX_CHUNK_BYTES } from './fetch.js';
import { FootageStore } from './store.js';

const DEVICE = 'front-door';
const ITEM = '1750000000000-0123456789ab';

/** What a misbehaving device or a stranger on the data topic adds around the real chunks of a window. */
type Noise = 'foreign-cid' | 'other-item' | 'duplicate' | 'oversized' | 'ahead' | 'drop-rest';

function chunkEvent(cid: string, itemId: string, offset: number, data: Uint8Array): VerifiedEvent {
  return {
    deviceId: DEVICE,
    topic: `doorbell/v1/${DEVICE}/data`,
    channel: 'data',
    event: doorbell.v1.Event.create({ itemChunk: { itemId, offset, data } }),
    counter: 0,
    correlationId: cid,
    issuedAtMs: 0,
    receivedAtMs: 0,
    receivedAtNs: 0n,
    retained: false,
    payloadBytes: data.length,
  };
}

/**
 * A device that answers FetchItem like firmware/services/footage-service.ts,
 * sending each window's chunks (and the planned noise) through a real
 * EventWatcher's 'event' — the chunks the hub's verification let through.
 */
function scriptedDevice(file: Uint8Array, watcher: EventWatcher, noise: Noise[][], tamper = false) {
  const sha256 = createHash('sha256').update(file).digest();
  let window = 0;
  const requests: number[] = [];
  const send: Commander['send'] = async (_device, body, _timeout, options) => {
    const cid = `cid-${window}`;
    options?.onCorrelationId?.(cid);
    const f = body.fetchItem as doorbell.v1.IFetchItem;
    const offset = Number(f.offset);
    requests.push(offset);
    const end = Math.min(file.length, offset + (f.maxBytes || 1 << 20));
    const plan = noise[window % noise.length] ?? [];
    window += 1;
    const emit = (e: VerifiedEvent) => watcher.emit('event', e);
    setImmediate(() => {
      for (let at = offset; at < end; at += MAX_CHUNK_BYTES) {
        const data = Uint8Array.from(file.subarray(at, Math.min(end, at + MAX_CHUNK_BYTES)));
        if (tamper && at === 0) data[0] = (data[0] ?? 0) ^ 1;
        if (plan.includes('foreign-cid'))
          emit(chunkEvent('someone-else', ITEM, at, randomBytes(data.length)));
        if (plan.includes('other-item')) emit(chunkEvent(cid, '1750000000000-ffffffffffff', at, data));
        if (plan.includes('oversized')) emit(chunkEvent(cid, ITEM, at, new Uint8Array(MAX_CHUNK_BYTES + 1)));
        if (plan.includes('ahead')) emit(chunkEvent(cid, ITEM, at + data.length, data));
        if (plan.includes('drop-rest') && at > offset) return; // the rest of the window is lost
        emit(chunkEvent(cid, ITEM, at, data));
        if (plan.includes('duplicate')) emit(chunkEvent(cid, ITEM, at, data));
      }
    });
    const item = {
      id: ITEM,
      kind: 'clip',
      reason: 'press',
      startMs: 1,
      endMs: 2,
      triggerMs: 1,
      bytes: file.length,
      sha256,
    };
    const result = doorbell.v1.CommandResult.create({ ok: true, window: { item, offset, end } });
    return { result, event: chunkEvent(cid, ITEM, 0, new Uint8Array()) };
  };
  return { commander: { send }, requests };
}

async function withStore<T>(fn: (store: FootageStore, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hub-footage-'));
  try {
    return await fn(new FootageStore(dir), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('fetchItem (the hub side of a transfer)', () => {
  test('any mix of foreign, duplicate, oversized, early and lost chunks: the stored object is the file, byte for byte', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 80_000 }),
        fc.constantFrom(MAX_CHUNK_BYTES, MAX_CHUNK_BYTES * 2, 50_000),
        fc.array(
          fc.subarray<Noise>(['foreign-cid', 'other-item', 'duplicate', 'oversized', 'ahead', 'drop-rest']),
          { minLength: 1, maxLength: 4 },
        ),
        async (size, windowBytes, noise) => {
          // Every window losing its tail would never finish; the property is about what is kept.
          if (noise.every((n) => n.includes('drop-rest'))) noise.push([]);
          await withStore(async (store) => {
            const file = randomBytes(size);
            const watcher = new EventWatcher(new Map(), silentLogger());
            const device = scriptedDevice(file, watcher, noise);
            const got = await fetchItem({
              commander: device.commander,
              watcher,
              store,
              deviceId: DEVICE,
              itemId: ITEM,
              logger: silentLogger(),
              windowBytes,
              chunkGapMs: 20,
            });
            assert.deepEqual(await readFile(got.path), file);
            assert.equal(got.transferred, size);
            assert.deepEqual(await readdir(join(store.root, 'partial', DEVICE)), [], 'no partial file left');
            // Each request starts where the hub's file ends: never beyond it, never backwards.
            for (let i = 1; i < device.requests.length; i++) {
              assert.ok((device.requests[i] ?? 0) >= (device.requests[i - 1] ?? 0));
            }
          });
        },
      ),
      { numRuns: 40 },
    );
  });

  test('a device that sends bytes other than those it signed the hash of: hash-mismatch, nothing kept', async () => {
    await withStore(async (store) => {
      const file = randomBytes(30_000);
      const watcher = new EventWatcher(new Map(), silentLogger());
      const device = scriptedDevice(file, watcher, [[]], true);
      await assert.rejects(
        fetchItem({
          commander: device.commander,
          watcher,
          store,
          deviceId: DEVICE,
          itemId: ITEM,
          logger: silentLogger(),
        }),
        (e: unknown) => e instanceof FetchError && e.kind === 'hash-mismatch',
      );
      assert.deepEqual(await readdir(join(store.root, 'partial', DEVICE)), []);
      assert.deepEqual(await readdir(join(store.root, 'objects')).catch(() => []), []);
    });
  });

  test('a device that never sends a chunk: the fetch stops as stalled, keeping nothing but an empty partial file', async () => {
    await withStore(async (store) => {
      const watcher = new EventWatcher(new Map(), silentLogger());
      const send: Commander['send'] = async () => {
        const result = doorbell.v1.CommandResult.create({
          ok: true,
          window: {
            item: { id: ITEM, bytes: 10, sha256: Buffer.alloc(32) },
            offset: 0,
            end: 10,
          },
        });
        return { result, event: chunkEvent('x', ITEM, 0, new Uint8Array()) };
      };
      await assert.rejects(
        fetchItem({
          commander: { send },
          watcher,
          store,
          deviceId: DEVICE,
          itemId: ITEM,
          logger: silentLogger(),
          chunkGapMs: 10,
          stallTimeoutMs: 100,
        }),
        (e: unknown) => e instanceof FetchError && e.kind === 'stalled',
      );
    });
  });

  test('refusals are typed: NOT_FOUND is not-found and drops the partial file; UNAUTHORISED is refused', async () => {
    for (const [kind, expected] of [
      [doorbell.v1.ErrorKind.NOT_FOUND, 'not-found'],
      [doorbell.v1.ErrorKind.UNAUTHORISED, 'refused'],
    ] as const) {
      await withStore(async (store) => {
        const watcher = new EventWatcher(new Map(), silentLogger());
        const send: Commander['send'] = async () => ({
          result: doorbell.v1.CommandResult.create({ ok: false, errorKind: kind, errorMessage: 'no' }),
          event: chunkEvent('x', ITEM, 0, new Uint8Array()),
        });
        await assert.rejects(
          fetchItem({
            commander: { send },
            watcher,
            store,
            deviceId: DEVICE,
            itemId: ITEM,
            logger: silentLogger(),
          }),
          (e: unknown) => e instanceof FetchError && e.kind === expected,
        );
      });
    }
  });
});
