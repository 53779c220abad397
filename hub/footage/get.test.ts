import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { silentLogger } from '../../common/logger.js';
import { waitFor } from '../../test-support/wait-for.js';
import { EventWatcher } from '../event-watcher.js';
import { FetchError } from './fetch.js';
import { fetchAndDecrypt } from './get.js';
import { DEVICE, ITEM, scriptedDevice, withStore } from './scripted-device.js';

async function encrypted(plain: Uint8Array, recipient: string): Promise<Uint8Array> {
  const e = new Encrypter();
  e.addRecipient(recipient);
  return e.encrypt(plain);
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe('fetchAndDecrypt (clip get: decryption keeps pace with the chunks)', () => {
  test('the plaintext grows while chunks still arrive; once the hash is checked it is the clip', async () => {
    await withStore(async (store, dir) => {
      const identity = await generateX25519Identity();
      const plain = randomBytes(1_500_000);
      const file = await encrypted(plain, await identityToRecipient(identity));
      const tmp = join(dir, 'clip.mp4.part');
      const watcher = new EventWatcher(new Map(), silentLogger());
      const lastWindow = file.length - (file.length % (256 * 1024) || 256 * 1024);
      // The device holds its last window back until plaintext is on disk: decryption runs before the end.
      const device = scriptedDevice(file, watcher, [[]], {
        beforeWindow: async (offset) => {
          if (offset >= lastWindow)
            await waitFor(
              async () => ((await stat(tmp).catch(() => undefined))?.size ?? 0) > 0,
              'plaintext',
              10_000,
            );
        },
      });
      const got = await fetchAndDecrypt(
        {
          commander: device.commander,
          watcher,
          store,
          deviceId: DEVICE,
          itemId: ITEM,
          logger: silentLogger(),
          windowBytes: 256 * 1024,
        },
        [identity],
        tmp,
      );
      assert.equal(got.decryptError, undefined);
      assert.equal(got.plaintextBytes, plain.length);
      assert.deepEqual(await readFile(tmp), plain);
      assert.deepEqual(await readFile(got.fetched.path), Buffer.from(file), 'the ciphertext is kept too');
    });
  });

  test('a device sending another valid age file than the one it signed: hash-mismatch, and no plaintext is left', async () => {
    await withStore(async (store, dir) => {
      const identity = await generateX25519Identity();
      const recipient = await identityToRecipient(identity);
      const file = await encrypted(randomBytes(600_000), recipient);
      // Same length, decrypts cleanly with the owner's key: only the whole file's hash tells them apart.
      const other = await encrypted(randomBytes(600_000), recipient);
      assert.equal(other.length, file.length);
      const tmp = join(dir, 'clip.mp4.part');
      const watcher = new EventWatcher(new Map(), silentLogger());
      const device = scriptedDevice(file, watcher, [[]], { sendInstead: other });
      await assert.rejects(
        fetchAndDecrypt(
          {
            commander: device.commander,
            watcher,
            store,
            deviceId: DEVICE,
            itemId: ITEM,
            logger: silentLogger(),
          },
          [identity],
          tmp,
        ),
        (e: unknown) => e instanceof FetchError && e.kind === 'hash-mismatch',
      );
      assert.equal(await exists(tmp), false, 'no plaintext file');
      assert.deepEqual(await readdir(join(store.root, 'objects')).catch(() => []), []);
    });
  });

  test('an identity that is not a recipient: the fetch completes and keeps the ciphertext; decryption is a typed error with no file', async () => {
    await withStore(async (store, dir) => {
      const owner = await generateX25519Identity();
      const stranger = await generateX25519Identity();
      const file = await encrypted(randomBytes(400_000), await identityToRecipient(owner));
      const tmp = join(dir, 'clip.mp4.part');
      const watcher = new EventWatcher(new Map(), silentLogger());
      const device = scriptedDevice(file, watcher, [[]]);
      const got = await fetchAndDecrypt(
        {
          commander: device.commander,
          watcher,
          store,
          deviceId: DEVICE,
          itemId: ITEM,
          logger: silentLogger(),
        },
        [stranger],
        tmp,
      );
      assert.equal(got.decryptError?.kind, 'no-identity');
      assert.equal(await exists(tmp), false);
      assert.deepEqual(await readFile(got.fetched.path), Buffer.from(file));
      // Asked again, the object is already here: decrypted from the store, nothing transferred.
      const again = await fetchAndDecrypt(
        {
          commander: device.commander,
          watcher,
          store,
          deviceId: DEVICE,
          itemId: ITEM,
          logger: silentLogger(),
        },
        [owner],
        tmp,
      );
      assert.equal(again.fetched.transferred, 0);
      assert.equal(again.plaintextBytes, 400_000);
    });
  });

  test('stopped part-way (Ctrl-C): aborted, the partial ciphertext stays for the next fetch, no plaintext file', async () => {
    await withStore(async (store, dir) => {
      const identity = await generateX25519Identity();
      const file = await encrypted(randomBytes(1_000_000), await identityToRecipient(identity));
      const tmp = join(dir, 'clip.mp4.part');
      const watcher = new EventWatcher(new Map(), silentLogger());
      const abort = new AbortController();
      const device = scriptedDevice(file, watcher, [[]], {
        // The third window is never sent: the owner gives up waiting.
        beforeWindow: async (offset) => {
          if (offset >= 2 * 256 * 1024) abort.abort();
        },
      });
      await assert.rejects(
        fetchAndDecrypt(
          {
            commander: device.commander,
            watcher,
            store,
            deviceId: DEVICE,
            itemId: ITEM,
            logger: silentLogger(),
            windowBytes: 256 * 1024,
            signal: abort.signal,
          },
          [identity],
          tmp,
        ),
        (e: unknown) => e instanceof FetchError && e.kind === 'aborted',
      );
      assert.equal(await exists(tmp), false, 'no plaintext file');
      assert.ok((await stat(store.partialPath(DEVICE, ITEM))).size > 0, 'the ciphertext so far is kept');
    });
  });
});
