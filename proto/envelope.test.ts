import assert from 'node:assert/strict';
import { verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { MAX_ENVELOPE_BYTES, SealError, sealCommand, sealEvent } from './envelope.js';
import { doorbell } from './gen/doorbell.js';
import { MAX_COUNTER } from './header.js';
import {
  COMMAND_BODIES,
  commandCtx,
  DEVICE_KEY,
  EVENT_BODIES,
  eventCtx,
  HUB_KEY,
  header,
  TOPICS,
} from './test-fixtures.js';
import { openCommand, openEvent } from './verify.js';

/** Plain objects with every default, so that sealed and opened bodies compare field by field. */
const plainEvent = (e: doorbell.v1.IEvent) =>
  doorbell.v1.Event.toObject(doorbell.v1.Event.fromObject(e), { defaults: true, oneofs: true });
const plainCommand = (c: doorbell.v1.ICommand) =>
  doorbell.v1.Command.toObject(doorbell.v1.Command.fromObject(c), { defaults: true, oneofs: true });

describe('seal and open round trip', () => {
  for (const [kind, body] of Object.entries(EVENT_BODIES)) {
    test(`event ${kind}`, () => {
      const h = header(TOPICS.evt);
      const sealed = sealEvent({ header: h, ...body }, DEVICE_KEY);
      const { event, key, header: opened } = openEvent(sealed, eventCtx());
      assert.equal(event.kind, kind);
      assert.equal(key.keyId, DEVICE_KEY.keyId);
      assert.deepEqual(opened, h);
      assert.deepEqual(plainEvent(event), plainEvent({ header: h, ...body }));
      for (const n of [opened.counter, opened.issuedAtMs, opened.expiresAtMs])
        assert.equal(typeof n, 'number');
    });
  }

  for (const [kind, body] of Object.entries(COMMAND_BODIES)) {
    test(`command ${kind}`, () => {
      const h = header(TOPICS.cmd);
      const sealed = sealCommand(doorbell.v1.Command.create({ header: h, ...body }), HUB_KEY);
      const { command, key, header: opened } = openCommand(sealed, commandCtx());
      assert.equal(command.kind, kind);
      assert.equal(key.keyId, HUB_KEY.keyId);
      assert.deepEqual(opened, h);
      assert.deepEqual(plainCommand(command), plainCommand({ header: h, ...body }));
    });
  }

  test('uint64 fields come back as numbers, up to 2^53-1 (the header counter up to MAX_COUNTER)', () => {
    const big = Number.MAX_SAFE_INTEGER;
    const h = header(TOPICS.evt, { counter: MAX_COUNTER, expiresAtMs: big });
    const sealed = sealEvent({ header: h, buttonPressed: { pressedAtMs: big, pressSeq: big } }, DEVICE_KEY);
    const { event, header: opened } = openEvent(sealed, eventCtx());
    assert.equal(opened.counter, MAX_COUNTER);
    assert.equal(event.buttonPressed?.pressedAtMs, big);
    assert.equal(event.buttonPressed?.pressSeq, big);
  });

  test('the envelope carries the key id and an Ed25519 signature over exactly the body', () => {
    const sealed = sealEvent({ header: header(TOPICS.evt), ...EVENT_BODIES.status }, DEVICE_KEY);
    const env = doorbell.v1.Envelope.decode(sealed);
    assert.equal(env.keyId, DEVICE_KEY.keyId);
    assert.equal(env.signature.length, 64);
    assert.ok(verify(null, env.body, DEVICE_KEY.publicKey, env.signature));
    assert.equal(doorbell.v1.Event.decode(env.body).kind, 'status');
  });
});

describe('sealing refuses what receivers would reject', () => {
  const cases: [string, doorbell.v1.IEvent, RegExp][] = [
    ['no header', { buttonPressed: {} }, /header is missing/],
    ['counter 0', { header: header(TOPICS.evt, { counter: 0 }), buttonPressed: {} }, /counter/],
    ['counter 2^53', { header: header(TOPICS.evt, { counter: 2 ** 53 }), buttonPressed: {} }, /counter/],
    [
      'counter MAX_COUNTER + 1',
      { header: header(TOPICS.evt, { counter: MAX_COUNTER + 1 }), buttonPressed: {} },
      /counter must be an integer from 1 to/,
    ],
    ['fractional counter', { header: header(TOPICS.evt, { counter: 1.5 }), buttonPressed: {} }, /counter/],
    [
      'expires before issued',
      { header: header(TOPICS.evt, { issuedAtMs: 10, expiresAtMs: 10 }), buttonPressed: {} },
      /expires_at_ms/,
    ],
    ['bad device id', { header: header(TOPICS.evt, { deviceId: 'a/b' }), buttonPressed: {} }, /device_id/],
    ['no topic', { header: header(TOPICS.evt, { topic: '' }), buttonPressed: {} }, /topic/],
    [
      'long correlation id',
      { header: header(TOPICS.evt, { correlationId: 'x'.repeat(65) }), buttonPressed: {} },
      /correlation_id/,
    ],
    ['no kind', { header: header(TOPICS.evt) }, /no kind/],
    [
      'uint64 body field above 2^53-1',
      { header: header(TOPICS.evt), buttonPressed: { pressedAtMs: 2 ** 60 } },
      /MAX_SAFE_INTEGER/,
    ],
    [
      'negative uint64 body field',
      { header: header(TOPICS.evt), buttonPressed: { pressSeq: -1 } },
      /MAX_SAFE_INTEGER/,
    ],
    [
      'wrong field type',
      { header: header(TOPICS.evt), chimeRang: { mode: 3 as unknown as string } },
      /mode: string expected/,
    ],
    [
      'oversized',
      {
        header: header(TOPICS.evt),
        commandResult: { ok: false, errorMessage: 'x'.repeat(MAX_ENVELOPE_BYTES) },
      },
      /above 16384/,
    ],
  ];
  for (const [name, event, message] of cases) {
    test(name, () => {
      assert.throws(
        () => sealEvent(event, DEVICE_KEY),
        (err: unknown) => err instanceof SealError && message.test(err.message),
      );
    });
  }
});
