import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  MAX_DATA_ENVELOPE_BYTES,
  MAX_ENVELOPE_BYTES,
  maxEnvelopeBytes,
  sealCommand,
  sealEvent,
} from './envelope.js';
import { ITEM_CHUNK_BYTES } from './footage.js';
import { doorbell } from './gen/doorbell.js';
import { MAX_COUNTER } from './header.js';
import { generateSigningKey, type SigningKey } from './keys.js';
import {
  commandCtx,
  DEVICE_KEY,
  eventCtx,
  HUB_KEY,
  header,
  keyMap,
  NOW_MS,
  TOPICS,
} from './test-fixtures.js';
import { errorKindOf, openCommand, openEvent, type RejectKind, VerifyError } from './verify.js';

const CID = '0123456789abcdef0123456789abcdef';

function command(overrides: Parameters<typeof header>[1] = {}, key: SigningKey = HUB_KEY): Uint8Array {
  return sealCommand(
    { header: header(TOPICS.cmd, { correlationId: CID, ...overrides }), getStatus: {} },
    key,
  );
}

/** Signs arbitrary body bytes, bypassing sealCommand's own checks. */
function signedBody(body: Uint8Array, key: SigningKey = HUB_KEY): Uint8Array {
  return doorbell.v1.Envelope.encode({
    body,
    signature: sign(null, body, key.privateKey),
    keyId: key.keyId,
  }).finish();
}

function envelopeOf(bytes: Uint8Array): { body: Uint8Array; signature: Uint8Array; keyId: string } {
  const env = doorbell.v1.Envelope.decode(bytes);
  return { body: Uint8Array.from(env.body), signature: Uint8Array.from(env.signature), keyId: env.keyId };
}

function rejects(bytes: Uint8Array, kind: RejectKind, correlationId?: string, ctx = commandCtx()): void {
  assert.throws(
    () => openCommand(bytes, ctx),
    (err: unknown) => {
      assert.ok(err instanceof VerifyError, String(err));
      assert.equal(err.kind, kind, err.message);
      assert.equal(err.correlationId, correlationId);
      return true;
    },
  );
}

describe('every reject kind from a crafted message', () => {
  test('oversized: checked before decoding', () => {
    rejects(new Uint8Array(MAX_ENVELOPE_BYTES + 1).fill(0xff), 'oversized');
  });

  test('undecodable: garbage envelope', () => {
    rejects(Uint8Array.from([0x0a, 0x10, 0x01]), 'undecodable');
    rejects(Uint8Array.from([0xff, 0xff, 0xff]), 'undecodable');
  });

  test('unsigned: empty signature or empty body', () => {
    const { body, keyId } = envelopeOf(command());
    rejects(doorbell.v1.Envelope.encode({ body, keyId }).finish(), 'unsigned');
    rejects(doorbell.v1.Envelope.encode({ signature: new Uint8Array(64), keyId }).finish(), 'unsigned');
    rejects(new Uint8Array(), 'unsigned');
  });

  test('unknown-key: signed by a key that is not enrolled', () => {
    rejects(command({}, generateSigningKey()), 'unknown-key');
  });

  test('unknown-key: a trusted key id with another key signature is a bad signature, not a trust', () => {
    const intruder = generateSigningKey();
    const { body } = envelopeOf(command({}, intruder));
    const forged = doorbell.v1.Envelope.encode({
      body,
      signature: sign(null, body, intruder.privateKey),
      keyId: HUB_KEY.keyId,
    }).finish();
    rejects(forged, 'bad-signature');
  });

  test('bad-signature: one flipped signature bit', () => {
    const env = envelopeOf(command());
    const signature = Uint8Array.from(env.signature);
    signature[10] = (signature[10] ?? 0) ^ 0x01;
    rejects(doorbell.v1.Envelope.encode({ ...env, signature }).finish(), 'bad-signature');
  });

  test('bad-signature: one flipped body bit', () => {
    const env = envelopeOf(command());
    const body = Uint8Array.from(env.body);
    body[body.length - 3] = (body[body.length - 3] ?? 0) ^ 0x01;
    rejects(doorbell.v1.Envelope.encode({ ...env, body }).finish(), 'bad-signature');
  });

  test('bad-signature: signature of the wrong length', () => {
    const env = envelopeOf(command());
    rejects(
      doorbell.v1.Envelope.encode({ ...env, signature: env.signature.subarray(0, 63) }).finish(),
      'bad-signature',
    );
  });

  test('undecodable: a signed body that does not decode carries no correlation id', () => {
    rejects(signedBody(Uint8Array.from([0x0a, 0x7f])), 'undecodable');
  });

  test('undecodable: a signed body with a malformed header echoes its correlation id', () => {
    const body = doorbell.v1.Command.encode({
      header: header(TOPICS.cmd, { correlationId: CID, counter: 0 }),
      getStatus: {},
    });
    rejects(signedBody(body.finish()), 'undecodable', CID);
    const noHeader = doorbell.v1.Command.encode({ getStatus: {} }).finish();
    rejects(signedBody(noHeader), 'undecodable');
  });

  test('wrong-device: addressed to another device', () => {
    rejects(command({ deviceId: 'back-door' }), 'wrong-device', CID);
  });

  test('wrong-topic: meant for another topic', () => {
    rejects(command({ topic: 'doorbell/v1/back-door/cmd' }), 'wrong-topic', CID);
    rejects(command({ topic: TOPICS.evt }), 'wrong-topic', CID);
  });

  test('expired: expires_at_ms at or before now', () => {
    rejects(command({ issuedAtMs: NOW_MS - 60_000, expiresAtMs: NOW_MS }), 'expired', CID);
    openCommand(command({ issuedAtMs: NOW_MS - 60_000, expiresAtMs: NOW_MS + 1 }), commandCtx());
  });

  test('not-yet-valid: issued_at_ms beyond the allowed clock skew', () => {
    const future = (skew: number) => command({ issuedAtMs: NOW_MS + skew, expiresAtMs: NOW_MS + 60_000 });
    openCommand(future(5000), commandCtx());
    rejects(future(5001), 'not-yet-valid', CID);
    openCommand(future(20_000), commandCtx({ maxClockSkewMs: 20_000 }));
    rejects(future(1), 'not-yet-valid', CID, commandCtx({ maxClockSkewMs: 0 }));
  });

  test('undecodable: no kind set', () => {
    const body = doorbell.v1.Command.encode({ header: header(TOPICS.cmd, { correlationId: CID }) }).finish();
    rejects(signedBody(body), 'undecodable', CID);
  });

  test('an event is checked the same way against the device key', () => {
    const sealed = sealEvent({ header: header(TOPICS.evt), pairingRequested: {} }, DEVICE_KEY);
    assert.equal(openEvent(sealed, eventCtx()).event.kind, 'pairingRequested');
    assert.throws(() => openEvent(sealed, eventCtx({ keys: keyMap(HUB_KEY) })), { kind: 'unknown-key' });
    assert.throws(() => openEvent(sealed, eventCtx({ topic: TOPICS.status })), { kind: 'wrong-topic' });
  });
});

describe('wire details', () => {
  test('a broken context is a TypeError naming the field, never a silent accept', () => {
    const sealed = command({ issuedAtMs: NOW_MS - 60_000, expiresAtMs: NOW_MS });
    assert.throws(() => openCommand(sealed, commandCtx({ nowMs: Number.NaN })), /nowMs/);
    assert.throws(() => openCommand(sealed, commandCtx({ maxClockSkewMs: -1 })), /maxClockSkewMs/);
  });

  test('an empty correlation id is not echoed', () => {
    rejects(command({ correlationId: '', deviceId: 'back-door' }), 'wrong-device');
  });

  test('two kinds on the wire are undecodable: the decoder would silently keep only the last', () => {
    const h = doorbell.v1.Command.encode({ header: header(TOPICS.cmd, { correlationId: CID }) }).finish();
    const ring = doorbell.v1.Command.encode({ ringChimeTest: {} }).finish();
    const status = doorbell.v1.Command.encode({ getStatus: {} }).finish();
    rejects(signedBody(Buffer.concat([h, ring, status])), 'undecodable', CID);
    const evt = doorbell.v1.Event.encode({ header: header(TOPICS.evt) }).finish();
    const pressed = doorbell.v1.Event.encode({ buttonPressed: {} }).finish();
    const rang = doorbell.v1.Event.encode({ chimeRang: {} }).finish();
    const body = Buffer.concat([evt, pressed, rang]);
    const envelope = doorbell.v1.Envelope.encode({
      body,
      signature: sign(null, body, DEVICE_KEY.privateKey),
      keyId: DEVICE_KEY.keyId,
    }).finish();
    assert.throws(
      () => openEvent(envelope, eventCtx()),
      (e) => e instanceof VerifyError && e.kind === 'undecodable' && /more than one kind/.test(e.message),
    );
  });

  test('the same kind twice on the wire is one kind (protobuf merges it) and opens', () => {
    const h = doorbell.v1.Command.encode({ header: header(TOPICS.cmd) }).finish();
    const status = doorbell.v1.Command.encode({ getStatus: {} }).finish();
    const { command } = openCommand(signedBody(Buffer.concat([h, status, status])), commandCtx());
    assert.equal(command.kind, 'getStatus');
  });

  test('a counter above MAX_COUNTER in a signed header is undecodable', () => {
    const body = doorbell.v1.Command.encode({
      header: header(TOPICS.cmd, { counter: MAX_COUNTER + 1, correlationId: CID }),
      getStatus: {},
    }).finish();
    rejects(signedBody(body), 'undecodable', CID);
    openCommand(command({ counter: MAX_COUNTER }), commandCtx());
  });

  test('uint64 above 2^53-1 in a signed header is undecodable, not rounded', () => {
    // header { counter: 2^53 } written by hand: field 3 varint.
    const writer = doorbell.v1.Header.encode(header(TOPICS.cmd, { counter: 1 }));
    const h = Buffer.concat([
      writer.finish(),
      Buffer.from([0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]),
    ]);
    const body = Buffer.concat([
      Buffer.from([0x0a, h.length]),
      h,
      doorbell.v1.Command.encode({ getStatus: {} }).finish(),
    ]);
    rejects(signedBody(body), 'undecodable');
  });

  test('an envelope of exactly MAX_ENVELOPE_BYTES passes the size check', () => {
    const sealed = command();
    const padding = MAX_ENVELOPE_BYTES - sealed.length - 4;
    // An unknown length-delimited field 15 outside the signature pads the envelope.
    const pad = Buffer.concat([
      Buffer.from([0x7a, 0x80 | (padding & 0x7f), padding >> 7]),
      Buffer.alloc(padding),
    ]);
    const padded = Buffer.concat([sealed, pad]);
    assert.equal(padded.length, MAX_ENVELOPE_BYTES - 1);
    openCommand(padded, commandCtx());
    rejects(Buffer.concat([padded, Buffer.alloc(2)]), 'oversized');
  });

  test("a full footage chunk seals and opens on the device's data topic only: everywhere else it is oversized", () => {
    const chunk = {
      itemChunk: { itemId: '1750000000000-0123456789ab', offset: 0, data: Buffer.alloc(ITEM_CHUNK_BYTES, 7) },
    };
    const sealed = sealEvent(
      { header: header(TOPICS.data), ...chunk },
      DEVICE_KEY,
      maxEnvelopeBytes(TOPICS.data),
    );
    assert.ok(
      sealed.length > MAX_ENVELOPE_BYTES && sealed.length <= MAX_DATA_ENVELOPE_BYTES,
      `${sealed.length}`,
    );
    assert.equal(openEvent(sealed, eventCtx({ topic: TOPICS.data })).event.kind, 'itemChunk');
    for (const topic of [TOPICS.evt, TOPICS.status, TOPICS.cmd, 'doorbell/v1/x/data/extra']) {
      assert.throws(() => openEvent(sealed, eventCtx({ topic })), { kind: 'oversized' }, topic);
    }
    // Sealed for another topic, the same event is refused by the sender itself.
    assert.throws(() => sealEvent({ header: header(TOPICS.evt), ...chunk }, DEVICE_KEY), /above 16384/);
    assert.throws(
      () =>
        openEvent(new Uint8Array(MAX_DATA_ENVELOPE_BYTES + 1).fill(0xff), eventCtx({ topic: TOPICS.data })),
      { kind: 'oversized' },
    );
  });

  test('errorKindOf maps each reject kind to the wire enum of the same name', () => {
    const kinds: RejectKind[] = [
      'oversized',
      'undecodable',
      'unsigned',
      'unknown-key',
      'bad-signature',
      'expired',
      'not-yet-valid',
      'wrong-device',
      'wrong-topic',
    ];
    const seen = new Set<number>();
    for (const kind of kinds) {
      const wire = errorKindOf(kind);
      assert.equal(doorbell.v1.ErrorKind[wire], kind.toUpperCase().replaceAll('-', '_'));
      seen.add(wire);
    }
    assert.equal(seen.size, kinds.length);
  });
});
