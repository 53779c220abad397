import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_BROKER,
  HubConfigError,
  hubConfigPath,
  loadHubConfig,
  MAX_HUB_CONFIG_BYTES,
  parseHubConfig,
  parseListen,
  resolveHubSettings,
  writeHubConfig,
} from './hub-config.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-hub-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the file lives under XDG_CONFIG_HOME (or ~/.config), or where DOORBELL_HUB_CONFIG says', () => {
  assert.equal(hubConfigPath({ XDG_CONFIG_HOME: '/x/cfg' }), '/x/cfg/open-doorbell/hub.json');
  assert.match(hubConfigPath({}), /\/\.config\/open-doorbell\/hub\.json$/);
  assert.equal(
    hubConfigPath({ DOORBELL_HUB_CONFIG: '/etc/hub.json', XDG_CONFIG_HOME: '/x' }),
    '/etc/hub.json',
  );
});

test('flags win over the environment, which wins over the file, which wins over the default, field by field', () => {
  const file = { broker: 'mqtts://file:8883', ca: '/file/ca.crt', cert: '/file/c.crt', key: '/file/c.key' };
  const env = { DOORBELL_HUB_BROKER: 'mqtts://env:8883', DOORBELL_HUB_CA: '/env/ca.crt' };
  assert.deepEqual(resolveHubSettings({ broker: 'mqtt://flag:1883' }, env, file), {
    broker: 'mqtt://flag:1883',
    ca: '/env/ca.crt',
    cert: '/file/c.crt',
    key: '/file/c.key',
    listen: undefined,
  });
  assert.deepEqual(resolveHubSettings({}, {}, undefined), {
    broker: DEFAULT_BROKER,
    ca: undefined,
    cert: undefined,
    key: undefined,
    listen: undefined,
  });
  assert.throws(
    () => resolveHubSettings({}, { DOORBELL_HUB_BROKER: 'tcp://x' }, undefined),
    /must look like mqtt:\/\/host:port/,
  );
});

test('init writes a 0600 file that reads back, refuses to replace it without force; relative paths are from the file', async () => {
  const file = join(dir, 'a', 'hub.json');
  await writeHubConfig(file, { broker: 'mqtts://hub.local:8883', ca: '/etc/ca.crt' }, false);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await loadHubConfig(file), { broker: 'mqtts://hub.local:8883', ca: '/etc/ca.crt' });
  await assert.rejects(writeHubConfig(file, { broker: 'mqtt://x:1' }, false), /exists: pass --force/);
  await writeHubConfig(file, { broker: 'mqtt://x:1' }, true);
  assert.match(await readFile(file, 'utf8'), /"broker": "mqtt:\/\/x:1"/);
  assert.deepEqual(parseHubConfig('{"ca": "certs/ca.crt"}', '/home/u/.config/open-doorbell/hub.json'), {
    ca: '/home/u/.config/open-doorbell/hub.json'.replace('hub.json', 'certs/ca.crt'),
  });
  assert.equal(await loadHubConfig(join(dir, 'none.json')), undefined, 'no file: no settings');
});

test('a bad file is a clear error naming the file and the field; an oversized one is refused unread', async () => {
  assert.throws(
    () => parseHubConfig('{"broker": "http://x"}', 'hub.json'),
    /hub\.json: broker: must look like mqtt/,
  );
  assert.throws(
    () => parseHubConfig('{"brokr": "mqtt://x:1"}', 'hub.json'),
    /hub\.json: \(root\): Unrecognized key/,
  );
  assert.throws(() => parseHubConfig('{', 'hub.json'), /hub\.json: not valid JSON/);
  const big = join(dir, 'big.json');
  await writeFile(big, ' '.repeat(MAX_HUB_CONFIG_BYTES + 1));
  await assert.rejects(loadHubConfig(big), /is 65537 bytes; the limit is 65536/);
});

test('property: any text is settings or a HubConfigError, never another exception, and errors stay short', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 400 }), fc.json({ maxDepth: 3 })), (text) => {
      try {
        parseHubConfig(text, 'hub.json');
      } catch (err) {
        assert.ok(err instanceof HubConfigError, String(err));
        assert.ok(err.message.length < 2_000);
      }
    }),
    { numRuns: 2000 },
  );
});

test("serve's listen address: host:port (IPv6 in brackets) from flag, environment or file; anything else is refused", () => {
  assert.deepEqual(parseListen('127.0.0.1:8580'), { host: '127.0.0.1', port: 8580 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('hub.local:443'), { host: 'hub.local', port: 443 });
  for (const bad of ['8580', '127.0.0.1', ':8580', '127.0.0.1:65536', 'a b:1', '::1:80', 'http://x:1'])
    assert.throws(() => parseListen(bad), HubConfigError, bad);
  const file = parseHubConfig('{"listen": "0.0.0.0:8443"}', join(dir, 'hub.json'));
  assert.equal(resolveHubSettings({}, {}, file).listen, '0.0.0.0:8443');
  assert.equal(resolveHubSettings({}, { DOORBELL_HUB_LISTEN: '[::1]:1' }, file).listen, '[::1]:1');
  assert.equal(
    resolveHubSettings({ listen: '127.0.0.1:9' }, { DOORBELL_HUB_LISTEN: '[::1]:1' }, file).listen,
    '127.0.0.1:9',
  );
  assert.throws(() => parseHubConfig('{"listen": "everywhere"}', 'hub.json'), /listen: must be host:port/);
});
