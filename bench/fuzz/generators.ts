import { createHash, createPrivateKey } from 'node:crypto';
import {
  doorbell,
  MAX_ENVELOPE_BYTES,
  type SigningKey,
  sealCommand,
  signingKeyFromPem,
  topicsFor,
} from '../../proto/index.js';

/** mulberry32: a tiny seeded PRNG, so that every case can be reproduced from the seed. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A uint32. */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor((this.u32() / 0x1_0000_0000) * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      out[i] = v & 0xff;
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  }
  hex(chars: number): string {
    let s = '';
    while (s.length < chars) s += this.u32().toString(16).padStart(8, '0');
    return s.slice(0, chars);
  }
}

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A deterministic Ed25519 key derived from the fuzz seed and a label. */
export function seededSigningKey(seed: number, label: string): SigningKey {
  const raw = createHash('sha256').update(`fuzz-commands:${seed}:${label}`).digest();
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, raw]);
  const pem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  });
  return signingKeyFromPem(pem.toString());
}

export const DEVICE = 'front-door';
export const CMD_TOPIC = topicsFor(DEVICE).cmd;
/** The verifier's longest allowed lifetime (the firmware's value). */
export const MAX_LIFETIME_MS = 30_000;
/** The verifier's allowed clock skew (the default). */
export const SKEW_MS = 5_000;

/** Every generator class; `control` cases are validly sealed and must be accepted. */
export const GENERATORS = [
  'random-bytes',
  'random-envelope',
  'bit-flip',
  'truncate',
  'insert-bytes',
  'wrong-device',
  'wrong-topic',
  'expired',
  'not-yet-valid',
  'lifetime-too-long',
  'untrusted-key',
  'forged-pair',
  'control',
] as const;
export type GeneratorName = (typeof GENERATORS)[number];

export interface FuzzCase {
  generator: GeneratorName;
  bytes: Uint8Array;
  /** Whether the case carries a ring command (in its body, or in the body it was mutated from). */
  ring: boolean;
}

export interface GeneratorOptions {
  prng: Prng;
  /** The trusted hub key. */
  hubKey: SigningKey;
  /** A key the receiver does not trust. */
  otherKey: SigningKey;
  /** The receiver's clock. */
  nowMs: () => number;
  /** Ring commands in controls; off for the MQTT stream (the chime must then not ring at all). */
  ringControls: boolean;
  /** The next counter of a control; counters of other cases do not reach the replay window. */
  nextCounter: () => number;
  /**
   * Called with the body of every validly sealed command produced for
   * acceptance (controls and the bases that mutations start from).
   */
  onValidBody: (body: Uint8Array) => void;
}

/** Produces fuzz cases of one generator class at a time, reproducibly from the PRNG. */
export class CommandFuzzer {
  constructor(private readonly o: GeneratorOptions) {}

  next(generator: GeneratorName): FuzzCase {
    const { prng } = this.o;
    switch (generator) {
      case 'random-bytes': {
        const size = prng.pick([
          () => prng.int(0, 16),
          () => prng.int(0, 256),
          () => prng.int(0, MAX_ENVELOPE_BYTES),
          () => prng.int(MAX_ENVELOPE_BYTES + 1, MAX_ENVELOPE_BYTES * 2),
        ])();
        return { generator, bytes: prng.bytes(size), ring: false };
      }
      case 'random-envelope': {
        // Well-formed Envelope, random body; key id of the trusted key, an unknown one or garbage.
        const body = prng.bytes(prng.int(0, 300));
        const signature = prng.bytes(prng.pick([0, 63, 64, 64, 64, 65]));
        const keyId = prng.pick([this.o.hubKey.keyId, this.o.otherKey.keyId, prng.hex(prng.int(0, 20))]);
        const bytes = doorbell.v1.Envelope.encode({ body, signature, keyId }).finish();
        return { generator, bytes, ring: false };
      }
      case 'bit-flip': {
        const base = this.validBase();
        const bytes = base.bytes.slice();
        const flips = prng.int(1, 8);
        for (let i = 0; i < flips; i++) {
          const at = prng.int(0, bytes.length - 1);
          bytes[at] = (bytes[at] ?? 0) ^ (1 << prng.int(0, 7));
        }
        return { generator, bytes, ring: base.ring };
      }
      case 'truncate': {
        const base = this.validBase();
        const keep = prng.int(0, base.bytes.length - 1);
        const bytes =
          prng.int(0, 1) === 0 ? base.bytes.slice(0, keep) : base.bytes.slice(base.bytes.length - keep);
        return { generator, bytes, ring: base.ring };
      }
      case 'insert-bytes': {
        const base = this.validBase();
        const at = prng.int(0, base.bytes.length);
        const extra = prng.bytes(prng.int(1, 16));
        const bytes = new Uint8Array(base.bytes.length + extra.length);
        bytes.set(base.bytes.subarray(0, at), 0);
        bytes.set(extra, at);
        bytes.set(base.bytes.subarray(at), at + extra.length);
        return { generator, bytes, ring: base.ring };
      }
      case 'wrong-device': {
        let deviceId = `${prng.pick(['back-door', 'front-doors', 'front-doo', 'garage', 'x'])}${prng.hex(prng.int(0, 6))}`;
        if (deviceId.length < 3 || deviceId === DEVICE) deviceId = 'back-door';
        // Half of them also carry the wrong device's own topic, as a command captured there would.
        const topic = prng.int(0, 1) === 0 ? CMD_TOPIC : topicsFor(deviceId).cmd;
        return this.resigned(generator, { deviceId, topic });
      }
      case 'wrong-topic': {
        const topic = prng.pick([
          topicsFor(DEVICE).evt,
          topicsFor(DEVICE).status,
          `${CMD_TOPIC}/`,
          `${CMD_TOPIC} `,
          CMD_TOPIC.toUpperCase(),
          'doorbell/v1/+/cmd',
          'doorbell/v1/#',
          `x${prng.hex(prng.int(0, 40))}`,
        ]);
        return this.resigned(generator, { topic });
      }
      case 'expired': {
        const now = this.o.nowMs();
        const expiresAtMs = now - prng.int(1_000, 10_000_000);
        return this.resigned(generator, {
          issuedAtMs: expiresAtMs - prng.int(1, MAX_LIFETIME_MS),
          expiresAtMs,
        });
      }
      case 'not-yet-valid': {
        const issuedAtMs = this.o.nowMs() + SKEW_MS + prng.int(60_000, 10_000_000);
        return this.resigned(generator, {
          issuedAtMs,
          expiresAtMs: issuedAtMs + prng.int(1, MAX_LIFETIME_MS),
        });
      }
      case 'lifetime-too-long': {
        const issuedAtMs = this.o.nowMs() - prng.int(0, 1_000);
        return this.resigned(generator, {
          issuedAtMs,
          expiresAtMs: issuedAtMs + MAX_LIFETIME_MS + prng.int(1, 10_000_000),
        });
      }
      case 'untrusted-key':
        return this.resigned(generator, {}, this.o.otherKey);
      case 'forged-pair': {
        // A Pair signed by the key it carries, with a guessed proof: it must never enrol anyone.
        const owner = seededSigningKey(prng.u32(), 'forged-owner');
        const now = this.o.nowMs();
        const header: doorbell.v1.IHeader = {
          deviceId: DEVICE,
          topic: CMD_TOPIC,
          counter: prng.int(1, 1_000_000),
          issuedAtMs: now,
          expiresAtMs: now + 10_000,
          correlationId: prng.hex(32),
        };
        const pair: doorbell.v1.IPair = {
          ownerPublicKey: owner.publicRaw,
          ownerLabel: prng.hex(prng.int(0, 8)),
          hubPublicKey: prng.int(0, 1) === 0 ? this.o.otherKey.publicRaw : prng.bytes(prng.int(0, 40)),
          hubRole: prng.int(0, 6),
          nonce: prng.bytes(prng.int(0, 40)),
          proof: prng.bytes(prng.pick([0, 31, 32, 32, 33])),
        };
        return { generator, bytes: sealCommand({ header, pair }, owner), ring: false };
      }
      case 'control': {
        const base = this.sealValid(this.o.ringControls && prng.int(0, 1) === 0, this.o.nextCounter());
        return { generator, bytes: base.bytes, ring: base.ring };
      }
    }
  }

  /** A validly sealed command that mutations start from; it is never sent as is. */
  private validBase(): { bytes: Uint8Array; ring: boolean } {
    return this.sealValid(this.o.prng.int(0, 1) === 0, this.o.prng.int(1, 1_000_000));
  }

  private sealValid(ring: boolean, counter: number): { bytes: Uint8Array; ring: boolean } {
    const bytes = this.seal(ring, { counter });
    const body = doorbell.v1.Envelope.decode(bytes).body;
    this.o.onValidBody(body);
    return { bytes, ring };
  }

  /** A command validly signed (by the trusted key unless `key` is given) whose binding is wrong. */
  private resigned(
    generator: GeneratorName,
    overrides: Partial<doorbell.v1.IHeader>,
    key: SigningKey = this.o.hubKey,
  ): FuzzCase {
    const ring = this.o.prng.int(0, 1) === 0;
    return { generator, bytes: this.seal(ring, overrides, key), ring };
  }

  private seal(ring: boolean, overrides: Partial<doorbell.v1.IHeader>, key = this.o.hubKey): Uint8Array {
    const { prng } = this.o;
    const now = this.o.nowMs();
    const issuedAtMs = now - prng.int(0, 2_000);
    const header: doorbell.v1.IHeader = {
      deviceId: DEVICE,
      topic: CMD_TOPIC,
      counter: prng.int(1, 1_000_000),
      issuedAtMs,
      expiresAtMs: issuedAtMs + prng.int(10_000, 20_000),
      correlationId: prng.hex(32),
      ...overrides,
    };
    return sealCommand(
      doorbell.v1.Command.create(ring ? { header, ringChimeTest: {} } : { header, getStatus: {} }),
      key,
    );
  }
}
