import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { silentLogger } from '../../common/logger.js';
import { waitFor } from '../../test-support/wait-for.js';
import { RigDriver } from '../protocol/driver.js';
import { isRigError } from '../protocol/errors.js';
import type { Frame } from '../protocol/frame.js';
import type { RigMessage } from '../protocol/message-types.js';
import { FrameParser } from '../protocol/parser.js';
import { writeFrame } from '../protocol/writer.js';
import { openSerialTransport } from '../serial-transport.js';
import { BoardWires } from './board-wires.js';
import { type RunningEmulator, startEmulator } from './index.js';
import type { LinkFaults } from './link-shaper.js';
import { RigEmulator } from './rig-emulator.js';
import { FakePower, FakeWires, memoryPair } from './test-doubles.js';

function rig(faults?: LinkFaults) {
  const [host, far] = memoryPair();
  const wires = new FakeWires();
  const power = new FakePower();
  const board = new BoardWires('/nowhere.sock', silentLogger(), async () => wires, 5);
  const emulator = new RigEmulator({ transport: far, board, power, ...(faults ? { faults } : {}) });
  return { host, wires, power, board, emulator };
}

test('press, hold and bounce drive the board wires and are ACKed once finished', async () => {
  const { host, wires, board } = rig();
  const driver = new RigDriver(host, { keepaliveMs: 0 });
  const id = await driver.open();
  assert.equal(id.firmware, 'emulator-1.0');
  assert.deepEqual(id.capabilities, ['button', 'bounce', 'chime', 'power', 'lamp', 'console']);
  await board.waitConnected(1000);
  const start = performance.now();
  await driver.press(80);
  assert.ok(performance.now() - start >= 75, 'PRESS is ACKed after the release');
  await driver.hold(20);
  await driver.bounce({ edges: 51, spacingUs: 400, settleMs: 150 });
  assert.deepEqual(wires.calls, ['press 80', 'hold 20', 'bounce 51 0.4 150']);
  await driver.close();
});

test('chime wire changes become CHIME_EDGE on the rig clock while watching, and none after', async () => {
  const { host, wires, board, emulator } = rig();
  const driver = new RigDriver(host, { keepaliveMs: 0 });
  await driver.open();
  await board.waitConnected(1000);
  wires.playChime(true, process.hrtime.bigint());
  const edges: Array<{ level: number; tUs: bigint }> = [];
  const stop = await driver.watchChime((e) => edges.push(e));
  const at = process.hrtime.bigint();
  wires.playChime(true, at);
  wires.playChime(false, at + 250_000_000n);
  const { uptimeUs, chimeLevel, chimeWatch } = await driver.info();
  await stop();
  wires.playChime(true, process.hrtime.bigint());
  await driver.ping();
  assert.equal(edges.length, 2, 'only the edges while watching');
  assert.deepEqual(
    edges.map((e) => e.level),
    [1, 0],
  );
  assert.equal(
    (edges[1]?.tUs ?? 0n) - (edges[0]?.tUs ?? 0n),
    250_000n,
    'edge times are the wire times in µs',
  );
  assert.equal(edges[0]?.tUs, emulator.uptimeUs(at));
  assert.ok(uptimeUs >= (edges[0]?.tUs ?? 0n));
  assert.equal(chimeLevel, 0);
  assert.equal(chimeWatch, true);
  await driver.close();
});

test('POWER switches the power switch, LAMP lights the board (again after a power cycle), CONSOLE forwards console lines', async () => {
  const { host, power, emulator, wires, board } = rig();
  const driver = new RigDriver(host, { keepaliveMs: 0 });
  await driver.open();
  await driver.power(false);
  await driver.power(true);
  assert.deepEqual(power.log, ['off', 'on']);
  await board.waitConnected(2000);
  await driver.lamp(true);
  assert.equal(emulator.lamp, true);
  assert.deepEqual(wires.calls, ['light true']);
  await driver.power(false);
  await driver.power(true);
  await board.waitConnected(2000);
  assert.deepEqual(wires.calls, ['light true', 'light true'], 'a rebooted board is lit again');
  const chunks: string[] = [];
  const stop = await driver.console((b) => chunks.push(Buffer.from(b).toString()));
  emulator.consoleLine('{"msg":"running"}');
  await driver.ping();
  assert.deepEqual(chunks, ['{"msg":"running"}\n']);
  const info = await driver.info();
  assert.equal(info.power, true);
  assert.equal(info.lamp, true);
  await stop();
  await driver.close();
});

test('the rig side of the protocol: not-ready before HELLO, busy during an action, bad CRC answered with id 0', async () => {
  const { host } = rig();
  const parser = new FrameParser();
  const replies: Frame[] = [];
  host.onData((b) => replies.push(...parser.push(b).frames));
  host.onClose(() => undefined);
  const send = (id: number, message: RigMessage) => host.write(writeFrame({ version: 1, id, message }));
  const reply = async (id: number) => {
    await waitFor(() => replies.some((r) => r.id === id), `the reply to #${id}`, 2000);
    const found = replies.find((r) => r.id === id);
    assert.ok(found);
    return found.message;
  };
  await send(1, { type: 'PRESS', durationMs: 10 });
  assert.deepEqual(await reply(1), { type: 'ERROR', code: 'not-ready', detail: 'PRESS before HELLO' });
  await send(2, { type: 'HELLO', versions: [1] });
  assert.equal((await reply(2)).type, 'HELLO_ACK');
  await send(3, { type: 'PRESS', durationMs: 100 });
  await send(4, { type: 'HOLD', durationMs: 10 });
  assert.deepEqual(await reply(4), { type: 'ERROR', code: 'busy', detail: 'PRESS is running' });
  const bad = writeFrame({ version: 1, id: 5, message: { type: 'INFO' } });
  bad[3] = (bad[3] ?? 0) ^ 0x10;
  await host.write(bad);
  const crc = await reply(0);
  assert.equal(crc.type === 'ERROR' && crc.code, 'bad-crc');
  assert.deepEqual(await reply(3), { type: 'ACK' });
  await host.close();
});

test("the driver counts the rig's id-0 ERRORs (frames damaged on the way to the rig) as the rig's link errors", async () => {
  const { host } = rig();
  const driver = new RigDriver(host, { keepaliveMs: 0 });
  await driver.open();
  assert.deepEqual(driver.rigLinkErrors, {});
  const bad = writeFrame({ version: 1, id: 99, message: { type: 'INFO' } });
  bad[3] = (bad[3] ?? 0) ^ 0x10;
  await host.write(bad);
  // Replies come in order: once the ping's PONG is back, the rig's ERROR has been read.
  await driver.ping();
  assert.deepEqual(driver.rigLinkErrors, { 'bad-crc': 1 });
  await driver.close();
});

const running: RunningEmulator[] = [];
after(async () => {
  for (const e of running) await e.stop();
});

async function overPty(faults: LinkFaults) {
  const wires = new FakeWires();
  const emu = await startEmulator({
    socketPath: '/nowhere.sock',
    power: new FakePower(),
    faults,
    connect: async () => wires,
  });
  running.push(emu);
  const driver = new RigDriver(await openSerialTransport({ path: emu.hostPath }), {
    keepaliveMs: 0,
    replyMarginMs: 400,
  });
  return { emu, driver, wires };
}

test('over a real pty with latency and jitter the driver works, just slower', async () => {
  const { driver, wires } = await overPty({ latencyMs: 20, jitterMs: 10, seed: 3 });
  await driver.open();
  const { roundTripMs } = await driver.ping();
  assert.ok(roundTripMs >= 20, `round trip ${roundTripMs} ms includes the added latency`);
  await driver.press(30);
  assert.deepEqual(wires.calls, ['press 30']);
  await driver.close();
});

test('heavy corruption: requests fail as clear timeouts or rejections, the driver counts bad frames and does not crash', async () => {
  const { driver, emu } = await overPty({ corruptRate: 0.05, dropRate: 0.02, seed: 42 });
  const outcomes: string[] = [];
  try {
    await driver.open();
    outcomes.push('open ok');
  } catch (err) {
    assert.ok(isRigError(err, 'handshake') || isRigError(err, 'timeout'), String(err));
    assert.match((err as Error).message, /HELLO|handshake/);
    outcomes.push('open failed');
  }
  if (outcomes[0] === 'open ok') {
    for (let i = 0; i < 20; i++) {
      try {
        await driver.ping(new Uint8Array(64).fill(i + 1));
        outcomes.push('ok');
      } catch (err) {
        assert.ok(isRigError(err, 'timeout') || isRigError(err, 'rejected'), String(err));
        assert.match((err as Error).message, /PING \(request #\d+\)|rejected|ERROR|bad/i);
        outcomes.push((err as { kind: string }).kind);
      }
    }
  }
  const stats = emu.emulator.linkStats;
  assert.ok(stats.toRig.corrupted + stats.toHost.corrupted > 0, 'faults were injected');
  assert.ok(
    outcomes.some((o) => o !== 'ok' && o !== 'open ok'),
    `some requests failed: ${outcomes.join(',')}`,
  );
  const errors = Object.values(driver.linkErrors).reduce((a, b) => a + b, 0);
  assert.ok(errors > 0 || outcomes.includes('timeout') || outcomes.includes('open failed'));
  await driver.close();
});

test('waitConnected resolves when the board serves its wire socket (after refused attempts), and rejects naming the socket when it never does', async () => {
  const wires = new FakeWires();
  let attempts = 0;
  let serve: () => void = () => {};
  const served = new Promise<void>((resolve) => {
    serve = resolve;
  });
  // Refused until the test says the daemon serves its socket.
  const board = new BoardWires(
    '/booting.sock',
    silentLogger(),
    async () => {
      attempts += 1;
      if (attempts < 3) throw new Error('ECONNREFUSED');
      await served;
      return wires;
    },
    5,
  );
  board.powerOn();
  const up = board.waitConnected(5000);
  assert.equal(board.connected, false);
  serve();
  await up;
  assert.equal(board.connected, true);
  assert.equal(attempts, 3);
  await board.waitConnected(0); // already connected: at once
  await board.powerOff();

  const never = new BoardWires(
    '/never.sock',
    silentLogger(),
    async () => Promise.reject(new Error('ENOENT')),
    5,
  );
  never.powerOn();
  await assert.rejects(never.waitConnected(50), /board wire socket \/never.sock not up within 50 ms/);
  await never.powerOff();
});
