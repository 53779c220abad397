import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_ENVELOPE_BYTES, sealCommand, sealEvent } from './envelope.js';
import { doorbell } from './gen/doorbell.js';
import { generateSigningKey } from './keys.js';
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
import { openCommand, openEvent, type VerifyContext, VerifyError } from './verify.js';

type Opener = (bytes: Uint8Array, ctx: VerifyContext) => unknown;
const OPENERS: [string, Opener, VerifyContext][] = [
  ['openCommand', openCommand, commandCtx()],
  ['openEvent', openEvent, eventCtx()],
];

/** 'opened', or the reject kind; any other throw fails the property. */
function outcome(open: Opener, bytes: Uint8Array, ctx: VerifyContext): string {
  try {
    open(bytes, ctx);
    return 'opened';
  } catch (err) {
    if (err instanceof VerifyError) return err.kind;
    throw err;
  }
}

/** What the signature covers and names: the body, the signature and the key id, as decoded. */
function signedContent(bytes: Uint8Array): string | undefined {
  try {
    const env = doorbell.v1.Envelope.decode(bytes);
    return `${Buffer.from(env.body).toString('hex')}/${Buffer.from(env.signature).toString('hex')}/${env.keyId}`;
  } catch {
    return undefined;
  }
}

const sealedArb = fc.oneof(
  fc.constantFrom(...Object.values(COMMAND_BODIES)).map((body) => ({
    open: openCommand as Opener,
    ctx: commandCtx(),
    bytes: sealCommand({ header: header(TOPICS.cmd), ...body }, HUB_KEY),
  })),
  fc.constantFrom(...Object.values(EVENT_BODIES)).map((body) => ({
    open: openEvent as Opener,
    ctx: eventCtx(),
    bytes: sealEvent({ header: header(TOPICS.evt), ...body }, DEVICE_KEY),
  })),
);

type Mutation = { flip: number } | { truncate: number } | { append: Uint8Array };
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map((flip) => ({ flip })),
  fc.nat().map((truncate) => ({ truncate })),
  fc.uint8Array({ minLength: 1, maxLength: 24 }).map((append) => ({ append })),
  // Appended fields that parse: repeated or unknown envelope fields.
  fc
    .tuple(fc.constantFrom(0x0a, 0x12, 0x1a, 0x22, 0x7a), fc.uint8Array({ maxLength: 70 }))
    .map(([tag, data]) => ({ append: Uint8Array.from([tag, data.length, ...data]) })),
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  if ('flip' in m) {
    const out = Uint8Array.from(bytes);
    const bit = m.flip % (bytes.length * 8);
    out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    return out;
  }
  if ('truncate' in m) return bytes.subarray(0, m.truncate % bytes.length);
  return Buffer.concat([bytes, m.append]);
}

describe('properties of opening', () => {
  for (const [name, open, ctx] of OPENERS) {
    test(`${name}: random bytes only ever raise VerifyError`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
          assert.notEqual(outcome(open, bytes, ctx), 'opened');
        }),
        { numRuns: 500 },
      );
      assert.equal(outcome(open, new Uint8Array(MAX_ENVELOPE_BYTES + 1), ctx), 'oversized');
    });

    test(`${name}: well-formed envelopes with random contents never verify`, () => {
      const keyIds = [...ctx.keys.keys(), generateSigningKey().keyId, ''];
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ minLength: 60, maxLength: 66 }),
          fc.constantFrom(...keyIds),
          (body, signature, keyId) => {
            const bytes = doorbell.v1.Envelope.encode({ body, signature, keyId }).finish();
            assert.notEqual(outcome(open, bytes, ctx), 'opened');
          },
        ),
        { numRuns: 300 },
      );
    });

    test(`${name}: a validly signed random body raises nothing but VerifyError`, () => {
      const key = name === 'openCommand' ? HUB_KEY : DEVICE_KEY;
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (body) => {
          const bytes = doorbell.v1.Envelope.encode({
            body,
            signature: sign(null, body, key.privateKey),
            keyId: key.keyId,
          }).finish();
          outcome(open, bytes, ctx);
        }),
        { numRuns: 300 },
      );
    });
  }

  test('a mutated envelope verifies only if what is signed and named is unchanged', () => {
    // Honest form of "mutations never verify": protobuf lets bytes change without
    // changing the decoded envelope (an unknown field appended, key_id repeated with
    // its own value). Those may verify, and then must yield the original message.
    let opened = 0;
    let rejected = 0;
    fc.assert(
      fc.property(sealedArb, mutationArb, ({ open, ctx, bytes }, m) => {
        const mutated = mutate(bytes, m);
        const result = outcome(open, mutated, ctx);
        if (result === 'opened') {
          opened++;
          assert.equal(signedContent(mutated), signedContent(bytes));
          assert.deepEqual(open(mutated, ctx), open(bytes, ctx));
        } else {
          rejected++;
        }
      }),
      { numRuns: 1000 },
    );
    // Both branches were exercised: the property is not vacuous.
    assert.ok(rejected > 0 && opened > 0, `opened ${opened}, rejected ${rejected}`);
  });

  test('any single bit flip inside the body or the signature never verifies', () => {
    const bytes = sealCommand({ header: header(TOPICS.cmd), ringChimeTest: {} }, HUB_KEY);
    const env = doorbell.v1.Envelope.decode(bytes);
    const parts = { body: Uint8Array.from(env.body), signature: Uint8Array.from(env.signature) };
    fc.assert(
      fc.property(fc.constantFrom('body', 'signature' as const), fc.nat(), (field, n) => {
        const target = Uint8Array.from(parts[field]);
        const bit = n % (target.length * 8);
        target[bit >> 3] = (target[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        const forged = doorbell.v1.Envelope.encode({ ...parts, keyId: env.keyId, [field]: target }).finish();
        assert.equal(outcome(openCommand, forged, commandCtx()), 'bad-signature');
      }),
      { numRuns: 500 },
    );
  });
});
