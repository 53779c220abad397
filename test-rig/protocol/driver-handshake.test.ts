import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeRig } from '../fake-rig.js';
import { REQUEST_ATTEMPTS, RigDriver } from './driver.js';
import { isRigError } from './errors.js';
import { CAPABILITIES } from './message-types.js';
import type { RigTransport } from './transport.js';

/** Two in-memory transports wired back to back: fast checks of driver logic that needs no pty. */
function memoryPair(): [RigTransport, RigTransport] {
  const make = () => ({ data: (_: Uint8Array) => {}, close: (_?: Error) => {}, open: true });
  const ends = [make(), make()];
  const transport = (me: number): RigTransport => ({
    async write(bytes) {
      if (!ends[me]?.open) throw new Error('closed');
      const copy = Uint8Array.from(bytes);
      setImmediate(() => ends[1 - me]?.data(copy));
    },
    onData: (cb) => {
      (ends[me] as { data: typeof cb }).data = cb;
    },
    onClose: (cb) => {
      (ends[me] as { close: typeof cb }).close = cb;
    },
    async close() {
      for (const end of ends) {
        if (end.open) {
          end.open = false;
          end.close();
        }
      }
    },
  });
  return [transport(0), transport(1)];
}

test('a rig that speaks none of our versions fails the handshake as `handshake`, and the port is closed', async () => {
  const [host, far] = memoryPair();
  const rig = new FakeRig(far);
  const driver = new RigDriver(host, { keepaliveMs: 0 });
  rig.override = (f) =>
    f.message.type === 'HELLO'
      ? { type: 'ERROR', code: 'unsupported-version', detail: 'v2 only' }
      : undefined;
  await assert.rejects(driver.open(), (err) => {
    assert.ok(isRigError(err, 'handshake'));
    assert.match(err.message, /unsupported-version: v2 only/);
    return true;
  });
  await assert.rejects(host.write(Uint8Array.of(0)), /closed/);
});

test('a rig that chooses a version we did not offer fails the handshake', async () => {
  const [host, far] = memoryPair();
  const rig = new FakeRig(far);
  rig.override = (f) =>
    f.message.type === 'HELLO'
      ? { type: 'HELLO_ACK', version: 7, capabilities: 0, firmware: 'x', serial: 'y' }
      : undefined;
  await assert.rejects(new RigDriver(host, { keepaliveMs: 0 }).open(), (err) => isRigError(err, 'handshake'));
});

test('a call needing a capability the rig lacks is refused locally as `unsupported`', async () => {
  const [host, far] = memoryPair();
  new FakeRig(far, CAPABILITIES.button);
  const driver = new RigDriver(host, { keepaliveMs: 0 });
  assert.deepEqual((await driver.open()).capabilities, ['button']);
  await driver.press(5);
  await assert.rejects(driver.lamp(true), (err) => isRigError(err, 'unsupported'));
  await assert.rejects(
    driver.watchChime(() => {}),
    (err) => isRigError(err, 'unsupported'),
  );
  await driver.close();
  await assert.rejects(driver.press(5), (err) => isRigError(err, 'closed'));
});

test('request ids count up from 1, starting with the HELLO', async () => {
  const [host, far] = memoryPair();
  const rig = new FakeRig(far);
  const driver = new RigDriver(host, { keepaliveMs: 0 });
  await driver.open();
  await driver.ping();
  await driver.info();
  assert.deepEqual(
    rig.received.map((f) => f.id),
    [1, 2, 3],
  );
  await driver.close();
});

test('a HELLO lost on the link is sent again: the handshake succeeds on the second attempt', async () => {
  const [host, far] = memoryPair();
  const rig = new FakeRig(far);
  let hellos = 0;
  // The first HELLO goes unanswered, as when a corrupted frame is dropped.
  rig.override = (f) => (f.message.type === 'HELLO' && ++hellos === 1 ? null : undefined);
  const driver = new RigDriver(host, { keepaliveMs: 0, replyMarginMs: 50 });
  const id = await driver.open();
  assert.equal(id.version, 1);
  assert.deepEqual(
    rig.received.map((f) => f.message.type),
    ['HELLO', 'HELLO'],
  );
  await driver.close();
});

test(`a rig that never answers fails the handshake after ${REQUEST_ATTEMPTS} HELLOs, as \`handshake\` naming the timeout`, async () => {
  const [host, far] = memoryPair();
  const rig = new FakeRig(far);
  rig.override = () => null;
  await assert.rejects(new RigDriver(host, { keepaliveMs: 0, replyMarginMs: 50 }).open(), (err) => {
    assert.ok(isRigError(err, 'handshake'));
    assert.match(err.message, new RegExp(`no reply to HELLO .* \\(sent ${REQUEST_ATTEMPTS} times\\)`));
    return true;
  });
  assert.equal(rig.received.length, REQUEST_ATTEMPTS);
});

test('a HELLO refused by the rig is not sent again', async () => {
  const [host, far] = memoryPair();
  const rig = new FakeRig(far);
  rig.override = () => ({ type: 'ERROR', code: 'busy', detail: 'flashing' });
  await assert.rejects(new RigDriver(host, { keepaliveMs: 0, replyMarginMs: 50 }).open(), (err) =>
    isRigError(err, 'handshake'),
  );
  assert.equal(rig.received.length, 1);
});

test('a lost LAMP or INFO is sent again, a lost PRESS is not (it could press twice)', async () => {
  const [host, far] = memoryPair();
  const rig = new FakeRig(far);
  const driver = new RigDriver(host, { keepaliveMs: 0, replyMarginMs: 50 });
  await driver.open();
  const seen = new Map<string, number>();
  // The first of each request goes unanswered.
  rig.override = (f) => {
    const n = (seen.get(f.message.type) ?? 0) + 1;
    seen.set(f.message.type, n);
    return n === 1 ? null : undefined;
  };
  await driver.lamp(true);
  await driver.info();
  await assert.rejects(driver.press(5), (err) => isRigError(err, 'timeout'));
  assert.deepEqual(Object.fromEntries(seen), { LAMP: 2, INFO: 2, PRESS: 1 });
  await driver.close();
});
