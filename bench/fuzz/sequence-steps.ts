import fc from 'fast-check';
import { doorbell, MAX_COUNTER, MAX_ENVELOPE_BYTES } from '../../proto/index.js';
import type { CommandKind } from '../../proto/roles.js';
import { FUZZ_TOPICS } from './device-under-fuzz.js';
import { seededSigningKey } from './generators.js';
import { ACTORS, type Actor, World } from './sequence-world.js';

const { Role } = doorbell.v1;
const RECIPIENT = 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq';

/** One step of a sequence; fast-check's model-based runner calls check, then run. */
export interface Step extends fc.AsyncCommand<object, World> {
  readonly name: string;
}

/** How a signed command is bent away from valid. */
const TWISTS = [
  'valid',
  'valid',
  'valid',
  'stale-epoch',
  'huge-counter',
  'ahead-4.9s',
  'far-future',
  'expired',
  'wrong-device',
  'wrong-topic',
  'two-kinds',
  'long-lifetime',
] as const;
type Twist = (typeof TWISTS)[number];

const KINDS = [
  'getStatus',
  'listKeys',
  'ringChimeTest',
  'setChimeMuted',
  'addKey',
  'removeKey',
  'rotateKey',
  'setRole',
  'setRecipients',
  'openPairingWindow',
  'otaGetState',
  'otaBegin',
] as const satisfies readonly CommandKind[];
type Kind = (typeof KINDS)[number];

/** A command body of `kind`; targets are the lower actors (never the owner) or unknown keys. */
function bodyOf(kind: Kind, seed: number, world: World): Omit<doorbell.v1.ICommand, 'header'> {
  const target = world.keys[(['view', 'operate', 'manage'] as const)[seed % 3] ?? 'view'];
  const someKey = seededSigningKey(seed, 'added');
  const role = [Role.VIEW, Role.OPERATE, Role.MANAGE, Role.ADMINISTER, 0, 9][seed % 6] as doorbell.v1.Role;
  switch (kind) {
    case 'getStatus':
      return { getStatus: {} };
    case 'listKeys':
      return { listKeys: {} };
    case 'ringChimeTest':
      return { ringChimeTest: {} };
    case 'setChimeMuted':
      return { setChimeMuted: { muted: seed % 2 === 0 } };
    case 'addKey':
      return { addKey: { publicKey: someKey.publicRaw, role, label: `k${seed % 100}` } };
    case 'removeKey':
      return { removeKey: { keyId: seed % 5 === 0 ? someKey.keyId : target.keyId } };
    case 'rotateKey':
      return { rotateKey: { keyId: target.keyId, newPublicKey: someKey.publicRaw } };
    case 'setRole':
      return { setRole: { keyId: target.keyId, role } };
    case 'setRecipients':
      return { setRecipients: { footageRecipients: seed % 4 === 0 ? ['age1bad'] : [RECIPIENT] } };
    case 'openPairingWindow':
      return { openPairingWindow: { seconds: [0, 30, 120, 600, 5, 100_000][seed % 6] ?? 0 } };
    case 'otaGetState':
      return { otaGetState: {} };
    case 'otaBegin':
      return { otaBegin: { bundleSize: seed, bundleSha256: new Uint8Array(32) } };
  }
}

/** A command signed by an enrolled actor, valid or bent by `twist`. */
class SignedStep implements Step {
  readonly name = 'signed';
  constructor(
    readonly actor: Actor,
    readonly kind: Kind,
    readonly twist: Twist,
    readonly seed: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const before = w.dev.out.length;
    const key = w.keys[this.actor];
    const role = w.dev.path.trust.roleOf(key.keyId);
    const trusted = w.dev.path.replay.trustedNowMs(w.clocks.local);
    const overrides: Partial<doorbell.v1.IHeader> = {};
    switch (this.twist) {
      case 'valid':
        break;
      case 'stale-epoch':
        overrides.keyEpoch = w.dev.path.trust.epoch + (this.seed % 2 === 0 ? 1 : -1);
        if (overrides.keyEpoch < 0) overrides.keyEpoch = 7;
        break;
      case 'huge-counter':
        overrides.counter = [MAX_COUNTER + 1, 2 ** 53 - 1, 2 ** 53 - 2][this.seed % 3] ?? MAX_COUNTER + 1;
        break;
      case 'ahead-4.9s':
        overrides.issuedAtMs = trusted + 4_900;
        overrides.expiresAtMs = trusted + 4_900 + 9_000;
        break;
      case 'far-future':
        overrides.issuedAtMs = w.trueMs + 3_600_000;
        overrides.expiresAtMs = w.trueMs + 3_609_000;
        break;
      case 'expired':
        overrides.issuedAtMs = w.trueMs - 3_600_000;
        overrides.expiresAtMs = w.trueMs - 3_591_000;
        break;
      case 'wrong-device':
        overrides.deviceId = 'back-door';
        break;
      case 'wrong-topic':
        overrides.topic = FUZZ_TOPICS.evt;
        break;
      case 'long-lifetime':
        overrides.expiresAtMs = w.trueMs + 600_000;
        break;
      case 'two-kinds':
        break;
    }
    let body = bodyOf(this.kind, this.seed, w);
    if (this.twist === 'two-kinds')
      body = { ...body, ...(this.kind === 'getStatus' ? { ringChimeTest: {} } : { getStatus: {} }) };
    let r: doorbell.v1.ICommandResult;
    if (this.twist === 'two-kinds') {
      // The encoder writes every set member: two kinds on the wire.
      const header = w.header(key, overrides);
      const encoded = doorbell.v1.Command.encode({ ...body, header } as doorbell.v1.ICommand).finish();
      [r = {}] = await w.send(World.signRaw(encoded, key), header.correlationId ?? '');
    } else {
      r = await w.command(this.actor, body, overrides);
    }
    // Issued 4.9 s ahead is within the allowed skew: valid, but it must not move trusted time (checked).
    const valid = this.twist === 'valid' || this.twist === 'ahead-4.9s';
    if (r.ok && !valid) {
      throw new Error(`a command with twist ${this.twist} was accepted (${this.actor} ${this.kind})`);
    }
    if (r.ok && !World.allowed(role, this.kind)) {
      throw new Error(`${this.actor} was allowed ${this.kind}`);
    }
    await w.check(this.toString(), {
      // Whoever holds Administer (the owner may have promoted a lower actor) may change the enrolment.
      mayChangeTrust: role === Role.ADMINISTER && valid,
      stranger: false,
      durableBefore: before,
    });
  }
  toString(): string {
    return `signed(${this.actor}, ${this.kind}, ${this.twist}, ${this.seed})`;
  }
}

const STRANGER_FORMS = [
  'random-bytes',
  'oversized',
  'mutated',
  'stranger-signed',
  'bad-proof-pair',
  'huge-counter-pair',
  'retained-like',
] as const;
type StrangerForm = (typeof STRANGER_FORMS)[number];

/** Bytes from a sender that is not enrolled. */
class StrangerStep implements Step {
  readonly name = 'stranger';
  constructor(
    readonly form: StrangerForm,
    readonly seed: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const before = w.dev.out.length;
    const stranger = seededSigningKey(this.seed, 'stranger');
    let bytes: Uint8Array;
    switch (this.form) {
      case 'random-bytes':
        bytes =
          fc.sample(fc.uint8Array({ maxLength: 300 }), { seed: this.seed, numRuns: 1 })[0] ??
          new Uint8Array();
        break;
      case 'oversized':
        bytes = new Uint8Array(MAX_ENVELOPE_BYTES + 1 + (this.seed % 1000));
        break;
      case 'mutated': {
        const base = w.sent.at(-(1 + (this.seed % Math.max(1, w.sent.length))))?.bytes ?? new Uint8Array(8);
        bytes = Uint8Array.from(base);
        const at = this.seed % Math.max(1, bytes.length);
        bytes[at] = (bytes[at] ?? 0) ^ (1 << (this.seed % 8));
        break;
      }
      case 'stranger-signed': {
        const header = w.header(stranger);
        bytes = World.signRaw(doorbell.v1.Command.encode({ header, ringChimeTest: {} }).finish(), stranger);
        break;
      }
      case 'bad-proof-pair':
      case 'huge-counter-pair': {
        const header = w.header(
          stranger,
          this.form === 'huge-counter-pair'
            ? { counter: MAX_COUNTER - 1, issuedAtMs: w.trueMs + 4_900, expiresAtMs: w.trueMs + 13_000 }
            : {},
        );
        const pair = {
          ownerPublicKey: stranger.publicRaw,
          nonce: new Uint8Array(16),
          proof: new Uint8Array(32).fill(this.seed & 0xff),
        };
        bytes = World.signRaw(doorbell.v1.Command.encode({ header, pair }).finish(), stranger);
        break;
      }
      case 'retained-like':
        bytes = w.sent.at(-1)?.bytes ?? new Uint8Array();
        await w.dev.path.commands.handle(FUZZ_TOPICS.cmd, bytes, true);
        await w.check(this.toString(), { mayChangeTrust: false, stranger: true, durableBefore: before });
        return;
    }
    const answers = await w.send(bytes);
    if (answers.some((a) => a.ok)) throw new Error(`a stranger's ${this.form} was answered OK`);
    await w.check(this.toString(), { mayChangeTrust: false, stranger: true, durableBefore: before });
  }
  toString(): string {
    return `stranger(${this.form}, ${this.seed})`;
  }
}

/** An envelope sent before, sent again (a capture replayed): never accepted twice. */
class ReplayStep implements Step {
  readonly name = 'replay';
  constructor(readonly pick: number) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const before = w.dev.out.length;
    const accepted = w.acceptedOnce.at(-(1 + (this.pick % Math.max(1, w.acceptedOnce.length))));
    if (accepted) {
      const answers = await w.send(accepted.bytes);
      if (answers.some((a) => a.ok))
        throw new Error(`a command accepted once was accepted again (${accepted.correlationId})`);
    }
    await w.check(this.toString(), { mayChangeTrust: false, stranger: false, durableBefore: before });
  }
  toString(): string {
    return `replay(${this.pick})`;
  }
}

/** Someone who knows the pairing code pairs: the window decides, and no role ever changes. */
class PairerStep implements Step {
  readonly name = 'pairer';
  constructor(
    readonly hub: 'none' | 'new' | Actor,
    readonly hubRole: number,
    readonly seed: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const before = w.dev.out.length;
    const pairer = seededSigningKey(this.seed, 'pairer');
    const hubKey =
      this.hub === 'none'
        ? undefined
        : this.hub === 'new'
          ? seededSigningKey(this.seed, 'pairer-hub')
          : w.keys[this.hub];
    const wasOpen = w.dev.path.pairingWindow.isOpen;
    const r = await w.pair(pairer, {
      ownerLabel: 'pairer',
      ...(hubKey ? { hubPublicKey: hubKey.publicRaw, hubRole: this.hubRole } : {}),
    });
    if (r.ok && !wasOpen) throw new Error('a pairing succeeded with the window closed');
    await w.check(this.toString(), { mayChangeTrust: r.ok === true, stranger: !r.ok, durableBefore: before });
  }
  toString(): string {
    return `pairer(hub ${this.hub}, role ${this.hubRole}, ${this.seed})`;
  }
}

/** The button held: on a paired doorbell the window must stay closed. */
class HoldStep implements Step {
  readonly name = 'hold';
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const before = w.dev.out.length;
    const wasOpen = w.dev.path.pairingWindow.isOpen;
    w.dev.path.onHold();
    if (!wasOpen && w.dev.path.pairingWindow.isOpen)
      throw new Error('a hold opened the window of a paired doorbell');
    await w.check('hold', { mayChangeTrust: false, stranger: false, durableBefore: before });
  }
  toString(): string {
    return 'hold';
  }
}

class RestartStep implements Step {
  readonly name = 'restart';
  constructor(readonly clean: boolean) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    await w.restart(this.clean);
    await w.check(this.toString(), {
      mayChangeTrust: false,
      stranger: false,
      durableBefore: w.dev.out.length,
    });
    await w.checkFiles((what) => {
      throw new Error(`after a restart: ${what}`);
    });
  }
  toString(): string {
    return this.clean ? 'restart(clean)' : 'restart(crash)';
  }
}

/** Time passes; the device's clock may be set back, and put right again. */
class ClockStep implements Step {
  readonly name = 'clock';
  constructor(
    readonly action: 'advance' | 'set-back' | 'put-right',
    readonly ms: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const lag = w.trueMs - w.clocks.local;
    w.trueMs += this.action === 'advance' ? this.ms : 1;
    w.clocks.mono += this.action === 'advance' ? this.ms : 1;
    if (this.action === 'set-back') w.clocks.local = w.trueMs - lag - this.ms;
    else if (this.action === 'put-right') w.clocks.local = w.trueMs;
    else w.clocks.local = w.trueMs - lag;
    await w.check(this.toString(), {
      mayChangeTrust: false,
      stranger: false,
      durableBefore: w.dev.out.length,
    });
  }
  toString(): string {
    return `clock(${this.action}, ${this.ms})`;
  }
}

/** A visitor presses: the chime rings unless a Manage key muted it. */
class PressStep implements Step {
  readonly name = 'press';
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    const before = w.dev.out.length;
    const muted = w.dev.path.settings.chimeMuted;
    const { rang, event } = await w.dev.press();
    w.stats.presses += 1;
    if (muted ? rang || event.skippedReason !== 'muted' : !rang || !event.rang) {
      throw new Error(`a press did not ring as it should (muted ${muted}): ${JSON.stringify(event)}`);
    }
    await w.check('press', { mayChangeTrust: false, stranger: false, durableBefore: before });
  }
  toString(): string {
    return 'press';
  }
}

/** The broker acknowledges everything queued. */
class DeliverStep implements Step {
  readonly name = 'deliver';
  check(): boolean {
    return true;
  }
  async run(_m: object, w: World): Promise<void> {
    w.dev.deliverAll();
    await w.check('deliver', { mayChangeTrust: false, stranger: false, durableBefore: w.dev.out.length });
  }
  toString(): string {
    return 'deliver';
  }
}

const seed = fc.nat();

/** Every step, weighted: mostly commands, with restarts, clock faults, pairings and presses between. */
export function stepArbitrary(): fc.Arbitrary<Step> {
  return fc.oneof(
    {
      weight: 40,
      arbitrary: fc
        .tuple(fc.constantFrom(...ACTORS), fc.constantFrom(...KINDS), fc.constantFrom(...TWISTS), seed)
        .map(([a, k, t, s]) => new SignedStep(a, k, t, s)),
    },
    {
      weight: 20,
      arbitrary: fc.tuple(fc.constantFrom(...STRANGER_FORMS), seed).map(([f, s]) => new StrangerStep(f, s)),
    },
    { weight: 6, arbitrary: seed.map((s) => new ReplayStep(s)) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(fc.constantFrom('none', 'new', ...ACTORS), fc.integer({ min: 0, max: 5 }), seed)
        .map(([h, r, s]) => new PairerStep(h as 'none' | 'new' | Actor, r, s)),
    },
    { weight: 2, arbitrary: fc.constant(new HoldStep()) },
    { weight: 2, arbitrary: fc.boolean().map((clean) => new RestartStep(clean)) },
    {
      weight: 12,
      arbitrary: fc.oneof(
        {
          weight: 8,
          arbitrary: fc.integer({ min: 0, max: 20_000 }).map((ms) => new ClockStep('advance', ms)),
        },
        {
          weight: 1,
          arbitrary: fc.integer({ min: 1, max: 7_200_000 }).map((ms) => new ClockStep('set-back', ms)),
        },
        { weight: 2, arbitrary: fc.constant(new ClockStep('put-right', 0)) },
      ),
    },
    { weight: 1, arbitrary: fc.constant(new PressStep()) },
    { weight: 5, arbitrary: fc.constant(new DeliverStep()) },
  );
}
