import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../common/logger.js';
import { doorbell } from '../../proto/index.js';
import type { Commander } from '../commander.js';
import { EventWatcher } from '../event-watcher.js';
import { FetchError, fetchItem, MAX_CHUNK_BYTES } from './fetch.js';
import { chunkEvent, DEVICE, ITEM, type Noise, scriptedDevice, withStore } from './scripted-device.js';

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
      const device = scriptedDevice(file, watcher, [[]], { tamper: true });
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
