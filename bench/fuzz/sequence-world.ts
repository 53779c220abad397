import { createHash, sign } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import {
  doorbell,
  fingerprintOf,
  MAX_REPLAY_FILE_BYTES,
  newCorrelationId,
  type SigningKey,
  sealPairCommand,
  verifyKeyOf,
} from '../../proto/index.js';
import { COMMAND_ROLES, Role } from '../../proto/roles.js';
import {
  DeviceUnderFuzz,
  FUZZ_DEVICE,
  FUZZ_TOPICS,
  type FuzzClocks,
  OUTBOX_MAX,
} from './device-under-fuzz.js';
import { seededSigningKey } from './generators.js';

/** The enrolled actors below the owner, and the owner. */
export const ACTORS = ['owner', 'view', 'operate', 'manage'] as const;
export type Actor = (typeof ACTORS)[number];
const ACTOR_ROLES: Record<Actor, Role> = {
  owner: Role.ADMINISTER,
  view: Role.VIEW,
  operate: Role.OPERATE,
  manage: Role.MANAGE,
};

/** A broken invariant: what, after which step. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

export interface Sent {
  bytes: Uint8Array;
  correlationId: string;
}

/** What the device's trust state looks like, to see who changed it. */
interface TrustSnapshot {
  epoch: number;
  keys: string;
  recipients: string;
}

export interface WorldStats {
  steps: number;
  restarts: number;
  presses: number;
  ownerChecks: number;
  byStep: Record<string, number>;
  answers: Record<string, number>;
}

/**
 * One run of the stateful fuzzer: a doorbell (DeviceUnderFuzz) in its own
 * state directory, the owner paired with the pairing secret as a hub would,
 * a View, an Operate and a Manage key enrolled by the owner, clocks the
 * steps move, and the invariants checked after every step:
 *
 *   1. nothing thrown out of the command service, no unhandled rejection;
 *   2. the owner's next valid command is accepted (after at most one skip
 *      to the counter a REPLAY answer names, as the hub's Commander does),
 *      whenever the device's clock is right;
 *   3. the enrolment (keys, roles, epoch, recipients) changes only in a step
 *      the owner signed validly or in a pairing with the secret;
 *   4. trusted time is never ahead of real time;
 *   5. no durable command result for a sender that is not enrolled; the
 *      outbox, replay.json and enrolment.json within their bounds, and
 *      replay marks only for keys that were enrolled;
 *   6. a press rings (unless muted), checked by the press step.
 */
export class World {
  readonly keys: Record<Actor, SigningKey>;
  /** Envelopes answered OK once: sending one again must never be OK. */
  readonly acceptedOnce: Sent[] = [];
  /** Everything sent, for replays and mutations (the last 64). */
  readonly sent: Sent[] = [];
  readonly everEnrolled = new Set<string>();
  readonly stats: WorldStats = { steps: 0, restarts: 0, presses: 0, ownerChecks: 0, byStep: {}, answers: {} };
  /** Real time in the simulation; the device's local clock may lag it (set back), never lead it. */
  trueMs: number;
  private readonly counters = new Map<string, number>();
  private trust: TrustSnapshot | undefined;
  private unhandled: unknown[] = [];
  private readonly onUnhandled = (reason: unknown): void => {
    this.unhandled.push(reason);
  };

  private constructor(
    readonly dir: string,
    readonly clocks: FuzzClocks,
    public dev: DeviceUnderFuzz,
    readonly logger: Logger,
    seed: number,
  ) {
    this.trueMs = clocks.local;
    this.keys = {
      owner: seededSigningKey(seed, 'owner'),
      view: seededSigningKey(seed, 'view'),
      operate: seededSigningKey(seed, 'operate'),
      manage: seededSigningKey(seed, 'manage'),
    };
    process.on('unhandledRejection', this.onUnhandled);
  }

  /** A fresh device, the owner paired and the three lower keys enrolled. */
  static async create(seed: number, logger: Logger, baseDir?: string): Promise<World> {
    const dir = await mkdtemp(join(baseDir ?? tmpdir(), 'fuzz-sequences-'));
    const clocks: FuzzClocks = { local: 1_750_000_000_000, mono: 0 };
    const dev = await DeviceUnderFuzz.open(join(dir, 'state'), clocks, logger);
    const world = new World(dir, clocks, dev, logger, seed);
    dev.path.onHold();
    const paired = await world.pair(world.keys.owner, { footageRecipients: [] });
    if (!paired.ok) throw new Error(`the owner could not pair: ${paired.errorMessage}`);
    for (const actor of ['view', 'operate', 'manage'] as const) {
      const r = await world.command('owner', {
        addKey: { publicKey: world.keys[actor].publicRaw, role: ACTOR_ROLES[actor], label: actor },
      });
      if (!r.ok) throw new Error(`could not enrol ${actor}: ${r.errorMessage}`);
    }
    world.snapshotTrust();
    return world;
  }

  /** The next counter of `key`. */
  nextCounter(key: SigningKey): number {
    const next = (this.counters.get(key.keyId) ?? 0) + 1;
    this.counters.set(key.keyId, next);
    return next;
  }

  /** The last counter `key` used (0 before its first). */
  lastCounter(key: SigningKey): number {
    return this.counters.get(key.keyId) ?? 0;
  }

  skipTo(key: SigningKey, counter: number): void {
    this.counters.set(key.keyId, Math.max(this.counters.get(key.keyId) ?? 0, counter - 1));
  }

  /** A valid header for `key`, issued now by real time, naming the device's current key epoch. */
  header(key: SigningKey, overrides: Partial<doorbell.v1.IHeader> = {}): doorbell.v1.IHeader {
    return {
      deviceId: FUZZ_DEVICE,
      topic: FUZZ_TOPICS.cmd,
      counter: this.nextCounter(key),
      issuedAtMs: this.trueMs,
      expiresAtMs: this.trueMs + 9_000,
      correlationId: newCorrelationId(),
      keyEpoch: this.dev.path.trust.epoch,
      ...overrides,
    };
  }

  /** Encodes and signs by hand, without sealing's checks, as an attacker would. */
  static signRaw(body: Uint8Array, key: SigningKey): Uint8Array {
    return doorbell.v1.Envelope.encode({
      body,
      signature: sign(null, body, key.privateKey),
      keyId: key.keyId,
    }).finish();
  }

  /** Sends `bytes` and returns the answers the device signed for it (by correlation id, if any). */
  async send(bytes: Uint8Array, correlationId?: string): Promise<doorbell.v1.ICommandResult[]> {
    const from = this.dev.out.length;
    try {
      await this.dev.handle(bytes);
    } catch (err) {
      throw new InvariantError(`the command service threw: ${String(err)}`);
    }
    if (correlationId !== undefined) {
      this.sent.push({ bytes, correlationId });
      if (this.sent.length > 64) this.sent.shift();
    }
    const answers = this.dev.out
      .slice(from)
      .filter(
        (o) =>
          o.event.commandResult &&
          (correlationId === undefined || o.event.header?.correlationId === correlationId),
      )
      .map((o) => o.event.commandResult ?? {});
    for (const a of answers) {
      const kind = a.ok ? 'OK' : (doorbell.v1.ErrorKind[a.errorKind ?? 0] ?? 'UNKNOWN');
      this.stats.answers[kind] = (this.stats.answers[kind] ?? 0) + 1;
      if (a.ok && correlationId !== undefined) this.acceptedOnce.push({ bytes, correlationId });
    }
    if (this.acceptedOnce.length > 256) this.acceptedOnce.splice(0, this.acceptedOnce.length - 256);
    return answers;
  }

  /** A command from an enrolled actor, valid unless `overrides` say otherwise; its first answer. */
  async command(
    actor: Actor,
    body: Omit<doorbell.v1.ICommand, 'header'>,
    overrides: Partial<doorbell.v1.IHeader> = {},
  ): Promise<doorbell.v1.ICommandResult> {
    const key = this.keys[actor];
    const header = this.header(key, overrides);
    const encoded = doorbell.v1.Command.encode({ ...body, header }).finish();
    const [answer] = await this.send(World.signRaw(encoded, key), header.correlationId ?? '');
    return answer ?? { ok: false, errorMessage: 'no answer (rate-limited or dropped)' };
  }

  /** A Pair signed by `owner` with the real pairing secret. */
  async pair(owner: SigningKey, pair: Omit<doorbell.v1.IPair, 'proof' | 'ownerPublicKey'>) {
    const header = {
      deviceId: FUZZ_DEVICE,
      topic: FUZZ_TOPICS.cmd,
      counter: this.nextCounter(owner),
      issuedAtMs: this.trueMs,
      expiresAtMs: this.trueMs + 9_000,
      correlationId: newCorrelationId(),
      keyEpoch: 0,
    };
    const { payload } = sealPairCommand({
      header,
      pair,
      owner,
      secret: this.dev.secret,
      fingerprint: fingerprintOf(verifyKeyOf(this.dev.deviceKey).publicRaw),
    });
    const [answer] = await this.send(payload, header.correlationId);
    return answer ?? { ok: false, errorMessage: 'no answer' };
  }

  /** Restarts the device on the same state directory, cleanly or as after a kill -9. */
  async restart(clean: boolean): Promise<void> {
    await this.dev.close(clean);
    this.dev = await DeviceUnderFuzz.open(join(this.dir, 'state'), this.clocks, this.logger);
    this.stats.restarts += 1;
  }

  /** Whether the device's clock reads real time (not set back). */
  get clockRight(): boolean {
    return this.clocks.local === this.trueMs;
  }

  /** Records the trust state as the new reference after a step that was allowed to change it. */
  snapshotTrust(): void {
    this.trust = this.readTrust();
    for (const k of this.dev.path.trust.list()) this.everEnrolled.add(k.key.keyId);
  }

  private readTrust(): TrustSnapshot {
    const t = this.dev.path.trust;
    return {
      epoch: t.epoch,
      keys: t
        .list()
        .map((k) => `${k.key.keyId}:${k.role}`)
        .sort()
        .join(','),
      recipients: [...t.recipients].sort().join(','),
    };
  }

  /**
   * The invariants after a step. `mayChangeTrust`: the step was signed
   * validly by the owner or was a pairing with the secret. `stranger`: the
   * step came from a sender that is not enrolled.
   */
  async check(
    step: string,
    o: { mayChangeTrust: boolean; stranger: boolean; durableBefore: number },
  ): Promise<void> {
    this.stats.steps += 1;
    this.stats.byStep[step] = (this.stats.byStep[step] ?? 0) + 1;
    const fail = (what: string): never => {
      throw new InvariantError(`after step ${this.stats.steps} (${step}): ${what}`);
    };
    if (this.unhandled.length > 0) fail(`unhandled rejection: ${String(this.unhandled[0])}`);

    const trust = this.readTrust();
    if (this.trust && trust.epoch < this.trust.epoch) fail(`the key epoch went down to ${trust.epoch}`);
    if (!o.mayChangeTrust && this.trust && JSON.stringify(trust) !== JSON.stringify(this.trust)) {
      fail(`the enrolment changed: ${JSON.stringify(this.trust)} -> ${JSON.stringify(trust)}`);
    }
    this.snapshotTrust();

    const trusted = this.dev.path.replay.trustedNowMs(this.clocks.local);
    if (trusted > this.trueMs) fail(`trusted time ${trusted} is ahead of real time ${this.trueMs}`);

    if (o.stranger) {
      const durable = this.dev.out.slice(o.durableBefore).filter((x) => x.durable && x.event.commandResult);
      if (durable.length > 0) fail('a sender that is not enrolled got a durable answer');
    }
    if (this.dev.outboxDepth > OUTBOX_MAX) fail(`outbox depth ${this.dev.outboxDepth}`);

    if (this.clockRight) await this.checkOwner(fail);
    if (this.stats.steps % 100 === 0) await this.checkFiles(fail);
  }

  /** The owner's next valid command is accepted (one skip after a REPLAY naming the next counter). */
  private async checkOwner(fail: (what: string) => never): Promise<void> {
    this.stats.ownerChecks += 1;
    let r = await this.command('owner', { getStatus: {} });
    if (!r.ok && r.errorKind === doorbell.v1.ErrorKind.REPLAY && Number(r.nextCounter) > 0) {
      this.skipTo(this.keys.owner, Number(r.nextCounter));
      r = await this.command('owner', { getStatus: {} });
    }
    if (!r.ok)
      fail(`the owner's command was refused: ${doorbell.v1.ErrorKind[r.errorKind ?? 0]} ${r.errorMessage}`);
  }

  /** Durable state within its bounds. */
  async checkFiles(fail: (what: string) => never): Promise<void> {
    const state = join(this.dir, 'state');
    const replay = await stat(join(state, 'replay.json')).catch(() => undefined);
    if (replay && replay.size > MAX_REPLAY_FILE_BYTES) fail(`replay.json is ${replay.size} bytes`);
    if (replay) {
      const file = JSON.parse(await readFile(join(state, 'replay.json'), 'utf8')) as {
        trustedMs: number;
        marks: Record<string, number>;
      };
      for (const keyId of Object.keys(file.marks)) {
        if (!this.everEnrolled.has(keyId)) fail(`replay.json keeps a mark for ${keyId}, never enrolled`);
      }
      if (file.trustedMs > this.trueMs)
        fail(`replay.json's trusted time ${file.trustedMs} is ahead of real time`);
    }
    const enrolment = JSON.parse(await readFile(join(state, 'enrolment.json'), 'utf8')) as {
      keys: unknown[];
    };
    if (enrolment.keys.length > 32) fail(`${enrolment.keys.length} keys enrolled`);
  }

  /** Whether a key of `role` (undefined: not enrolled) may send `kind`. */
  static allowed(role: Role | undefined, kind: keyof typeof COMMAND_ROLES): boolean {
    const needed = COMMAND_ROLES[kind];
    return needed !== 'pairing' && role !== undefined && role >= needed;
  }

  static fingerprint(bytes: Uint8Array): string {
    return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  }

  async dispose(): Promise<void> {
    process.off('unhandledRejection', this.onUnhandled);
    await this.dev.close(true).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
