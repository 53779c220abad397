import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { generateSigningKey, publicKeyToText } from '../proto/index.js';
import { HubStateError, loadDevices } from './hub-state.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hub-state-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('property: any devices.json content loads as pinned keys or fails with a HubStateError', async () => {
  const good = publicKeyToText(generateSigningKey());
  const content = fc.oneof(
    fc.string(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc
      .dictionary(
        fc.string({ maxLength: 70 }),
        fc.record({ publicKey: fc.oneof(fc.constant(good), fc.string()) }),
      )
      .map((devices) => JSON.stringify({ devices })),
  );
  await fc.assert(
    fc.asyncProperty(content, async (text) => {
      await writeFile(join(dir, 'devices.json'), text);
      try {
        const devices = await loadDevices(dir);
        for (const key of devices.values()) assert.equal(publicKeyToText(key), good);
      } catch (err) {
        assert.ok(err instanceof HubStateError, `threw ${String(err)}`);
      }
    }),
    { numRuns: 300 },
  );
});
