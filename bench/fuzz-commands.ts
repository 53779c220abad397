import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt-connection.js';
import { parseConfig } from '../firmware/config/load.js';
import { type RunningDoorbell, startDoorbell } from '../firmware/root.js';
import { EventWatcher, type VerifiedEvent } from '../hub/event-watcher.js';
import {
  doorbell,
  openCommand,
  publicKeyToText,
  type SigningKey,
  sealCommand,
  type VerifyContext,
  VerifyError,
  verifyKeyOf,
} from '../proto/index.js';
import {
  CMD_TOPIC,
  CommandFuzzer,
  DEVICE,
  type FuzzCase,
  GENERATORS,
  type GeneratorName,
  MAX_LIFETIME_MS,
  Prng,
  SKEW_MS,
  seededSigningKey,
} from './fuzz/generators.js';
import type { BenchArgs } from './run.js';

/** The verifier's fixed clock for the in-process phase. */
const VERIFY_NOW_MS = 1_750_000_000_000;
const DEFAULT_MQTT_CASES = 2_000;
/** MQTT publishes per pacing step, and the pause after each step. */
const PACE_BATCH = 20;
const PACE_MS = 10;

export interface FuzzOptions {
  /** Cases fed to the verifier in-process. */
  cases: number;
  /** Cases published to the daemon; default min(cases, 2000). */
  mqttCases?: number;
  /** PRNG seed (uint32); random when unset, always reported. */
  seed?: number;
  /** Progress lines (to stderr by default). */
  progress?: (line: string) => void;
}

export interface GeneratorStats {
  cases: number;
  rejected: number;
  accepted: number;
}

export interface FuzzResult extends Record<string, unknown> {
  metric: 'fuzz-commands';
  cases: number;
  seed: number;
  crashes: number;
  wrongly_accepted: number;
  accepted_controls: number;
  rejected_controls: number;
  /** Mutated envelopes that opened with an unchanged, validly signed body (e.g. an unknown field added). */
  accepted_same_body: number;
  rejections_by_kind: Record<string, number>;
  by_generator: Record<string, GeneratorStats>;
  failures: string[];
  mqtt_cases: number;
  mqtt_controls: number;
  mqtt_controls_answered_ok: number;
  daemon_alive: boolean;
  daemon_error_logs: number;
  chime_rings: number;
  expected_chime_rings: number;
  ok: boolean;
  duration_s: number;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

type Outcome =
  | { kind: 'accepted'; sameBody: boolean }
  | { kind: 'rejected'; reason: string }
  | { kind: 'crash'; error: unknown };

function classify(bytes: Uint8Array, ctx: VerifyContext, validBodies: ReadonlySet<string>): Outcome {
  try {
    openCommand(bytes, ctx);
  } catch (error) {
    if (error instanceof VerifyError) return { kind: 'rejected', reason: error.kind };
    return { kind: 'crash', error };
  }
  // Compare the body the envelope carries (as signed), not a re-encoding.
  const body = doorbell.v1.Envelope.decode(bytes).body;
  return { kind: 'accepted', sameBody: validBodies.has(hex(body)) };
}

/** Round-robin over the generator classes, so every class gets about cases / classes. */
const generatorAt = (i: number): GeneratorName => GENERATORS[i % GENERATORS.length] as GeneratorName;

function describe(c: FuzzCase, i: number, seed: number): string {
  const preview = hex(c.bytes.subarray(0, 48));
  return `seed ${seed} case ${i} (${c.generator}, ${c.bytes.length} bytes, ${preview}${c.bytes.length > 48 ? '…' : ''})`;
}

/**
 * Feeds random and mutated command envelopes to openCommand in-process and
 * then a sample of them to a running daemon over MQTT (see GENERATORS in
 * bench/fuzz/generators.ts for the classes). Reproducible from `seed`.
 */
export async function fuzzCommands(options: FuzzOptions): Promise<FuzzResult> {
  const started = process.hrtime.bigint();
  const seed = options.seed ?? randomInt(0, 2 ** 32 - 1);
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { cases } = options;
  const mqttCases = options.mqttCases ?? Math.min(cases, DEFAULT_MQTT_CASES);
  progress(`fuzz-commands: seed ${seed}, ${cases} verifier cases, ${mqttCases} MQTT cases`);

  const hubKey = seededSigningKey(seed, 'hub');
  const otherKey = seededSigningKey(seed, 'untrusted');
  const failures: string[] = [];
  const fail = (what: string): void => {
    if (failures.length < 20) failures.push(what);
  };
  const rejectionsByKind: Record<string, number> = {};
  const byGenerator: Record<string, GeneratorStats> = Object.fromEntries(
    GENERATORS.map((g) => [g, { cases: 0, rejected: 0, accepted: 0 }]),
  );
  let crashes = 0;
  let wronglyAccepted = 0;
  let acceptedControls = 0;
  let rejectedControls = 0;
  let acceptedSameBody = 0;

  // Phase 1: the verifier, in-process, on a fixed clock.
  const prng = new Prng(seed);
  const validBodies = new Set<string>();
  let controlCounter = 0;
  const fuzzer = new CommandFuzzer({
    prng,
    hubKey,
    otherKey,
    nowMs: () => VERIFY_NOW_MS,
    ringControls: true,
    nextCounter: () => ++controlCounter,
    onValidBody: (body) => validBodies.add(hex(body)),
  });
  const ctx: VerifyContext = {
    deviceId: DEVICE,
    topic: CMD_TOPIC,
    nowMs: VERIFY_NOW_MS,
    keys: new Map([[hubKey.keyId, verifyKeyOf(hubKey)]]),
    maxClockSkewMs: SKEW_MS,
    maxLifetimeMs: MAX_LIFETIME_MS,
  };
  const step = Math.max(1, Math.ceil(cases / 10));
  for (let i = 0; i < cases; i++) {
    const c = fuzzer.next(generatorAt(i));
    const stats = byGenerator[c.generator] as GeneratorStats;
    stats.cases += 1;
    const outcome = classify(c.bytes, ctx, validBodies);
    if (outcome.kind === 'crash') {
      crashes += 1;
      fail(`crash: ${describe(c, i, seed)}: ${String(outcome.error)}`);
    } else if (outcome.kind === 'rejected') {
      stats.rejected += 1;
      rejectionsByKind[outcome.reason] = (rejectionsByKind[outcome.reason] ?? 0) + 1;
      if (c.generator === 'control') {
        rejectedControls += 1;
        fail(`control rejected (${outcome.reason}): ${describe(c, i, seed)}`);
      }
    } else {
      stats.accepted += 1;
      if (c.generator === 'control') acceptedControls += 1;
      else if (outcome.sameBody) acceptedSameBody += 1;
      if (!outcome.sameBody) {
        wronglyAccepted += 1;
        fail(`wrongly accepted: ${describe(c, i, seed)}`);
      }
    }
    if ((i + 1) % step === 0 || i + 1 === cases) {
      progress(`fuzz-commands: verifier ${Math.round(((i + 1) / cases) * 100)}% (${i + 1}/${cases})`);
    }
  }

  // Phase 2: a running daemon over MQTT.
  const daemon = await fuzzDaemon({ seed, hubKey, otherKey, mqttCases, progress, fail });
  crashes += daemon.crashes;
  wronglyAccepted += daemon.wronglyAccepted;

  const ok =
    crashes === 0 &&
    wronglyAccepted === 0 &&
    rejectedControls === 0 &&
    daemon.alive &&
    daemon.chimeRings === daemon.expectedRings &&
    daemon.controlsAnsweredOk === daemon.controls;
  return {
    metric: 'fuzz-commands',
    cases,
    seed,
    crashes,
    wrongly_accepted: wronglyAccepted,
    accepted_controls: acceptedControls,
    rejected_controls: rejectedControls,
    accepted_same_body: acceptedSameBody,
    rejections_by_kind: rejectionsByKind,
    by_generator: byGenerator,
    failures,
    mqtt_cases: daemon.sent,
    mqtt_controls: daemon.controls,
    mqtt_controls_answered_ok: daemon.controlsAnsweredOk,
    daemon_alive: daemon.alive,
    daemon_error_logs: daemon.errorLogs,
    chime_rings: daemon.chimeRings,
    expected_chime_rings: daemon.expectedRings,
    ok,
    duration_s: Number(process.hrtime.bigint() - started) / 1e9,
  };
}

interface DaemonPhase {
  seed: number;
  hubKey: SigningKey;
  otherKey: SigningKey;
  mqttCases: number;
  progress: (line: string) => void;
  fail: (what: string) => void;
}

async function fuzzDaemon(p: DaemonPhase): Promise<{
  sent: number;
  controls: number;
  controlsAnsweredOk: number;
  crashes: number;
  wronglyAccepted: number;
  alive: boolean;
  errorLogs: number;
  chimeRings: number;
  expectedRings: number;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'fuzz-commands-'));
  let broker: RunningBroker | undefined;
  let device: RunningDoorbell | undefined;
  let raw: MqttClient | undefined;
  let hub: MqttConnection | undefined;
  let errorLogs = 0;
  let crashes = 0;
  const onUncaught = (error: unknown): void => {
    p.fail(`uncaught in the daemon's process: ${String(error)}`);
    crashes += 1;
  };
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  try {
    broker = await startMosquitto();
    const logger = pino(
      { level: 'error' },
      {
        write: () => {
          errorLogs += 1;
        },
      },
    );
    device = await startDoorbell(
      parseConfig(
        {
          deviceId: DEVICE,
          stateDir: join(dir, 'device'),
          broker: { url: broker.url, reconnect: { minMs: 100, maxMs: 400 } },
          trust: { hubKeys: [publicKeyToText(p.hubKey)] },
          hal: { backend: 'sim' },
          // The stream's controls and the hub key's bent commands come faster than one key's
          // answer budget allows: every control must be answered to count.
          commands: { keyRepliesPerS: 10_000 },
        },
        'fuzz-commands',
      ),
      { logger },
    );
    const results = new Map<string, VerifiedEvent>();
    let online = false;
    const watcher = new EventWatcher(new Map([[device.deviceId, device.key]]), silentLogger());
    watcher.on('event', (e) => {
      if (e.event.kind === 'commandResult') results.set(e.correlationId, e);
      if (e.event.status?.state === doorbell.v1.Status.State.ONLINE) online = true;
    });
    hub = new MqttConnection({
      url: broker.url,
      clientId: `fuzz-hub-${process.pid}`,
      logger: silentLogger(),
      subscriptions: EventWatcher.subscriptions,
    });
    hub.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
    hub.start();
    raw = await connectAsync(broker.url, { protocolVersion: 5, clientId: `fuzz-raw-${process.pid}` });
    await waitFor(() => online, 10_000, 'the doorbell online');

    // The same generators on the wall clock; controls are getStatus only, so the chime must not ring.
    const prng = new Prng((p.seed ^ 0x9e3779b9) >>> 0);
    const validBodies = new Set<string>();
    let counter = 0;
    const fuzzer = new CommandFuzzer({
      prng,
      hubKey: p.hubKey,
      otherKey: p.otherKey,
      nowMs: Date.now,
      ringControls: false,
      nextCounter: () => ++counter,
      onValidBody: (body) => validBodies.add(hex(body)),
    });
    const keys = new Map([[p.hubKey.keyId, verifyKeyOf(p.hubKey)]]);
    const controlIds: string[] = [];
    let wronglyAccepted = 0;
    let sent = 0;
    let skipped = 0;
    const step = Math.max(1, Math.ceil(p.mqttCases / 10));
    for (let i = 0; sent < p.mqttCases; i++) {
      const c = fuzzer.next(generatorAt(i));
      const outcome = classify(
        c.bytes,
        { deviceId: DEVICE, topic: CMD_TOPIC, nowMs: Date.now(), keys, maxLifetimeMs: MAX_LIFETIME_MS },
        validBodies,
      );
      if (outcome.kind === 'crash') {
        crashes += 1;
        p.fail(`crash (MQTT phase, verifier): case ${i} ${c.generator}: ${String(outcome.error)}`);
      }
      if (outcome.kind === 'accepted' && c.generator !== 'control') {
        if (!outcome.sameBody) {
          wronglyAccepted += 1;
          p.fail(`wrongly accepted (MQTT phase, verifier): case ${i} ${c.generator}`);
        } else {
          // A mutant that kept the signed body (e.g. an added unknown field) is a valid
          // command; sending it could ring legitimately, so it stays out of the stream.
          skipped += 1;
          continue;
        }
      }
      if (c.generator === 'control') {
        controlIds.push(
          doorbell.v1.Command.decode(doorbell.v1.Envelope.decode(c.bytes).body).header?.correlationId ?? '',
        );
      }
      await raw.publishAsync(CMD_TOPIC, Buffer.from(c.bytes), { qos: 0 });
      sent += 1;
      if (sent % PACE_BATCH === 0) await sleep(PACE_MS);
      if (sent % step === 0 || sent === p.mqttCases) {
        p.progress(`fuzz-commands: MQTT ${Math.round((sent / p.mqttCases) * 100)}% (${sent}/${p.mqttCases})`);
      }
    }
    if (skipped > 0) p.progress(`fuzz-commands: ${skipped} same-body mutants kept out of the MQTT stream`);

    // A fresh valid getStatus, published after the whole stream on the same connection.
    const now = Date.now();
    const correlationId = `fuzz-final-${prng.hex(16)}`;
    const final = sealCommand(
      doorbell.v1.Command.create({
        header: {
          deviceId: DEVICE,
          topic: CMD_TOPIC,
          counter: ++counter,
          issuedAtMs: now,
          expiresAtMs: now + 30_000,
          correlationId,
        },
        getStatus: {},
      }),
      p.hubKey,
    );
    await raw.publishAsync(CMD_TOPIC, Buffer.from(final), { qos: 1 });
    let alive = false;
    try {
      await waitFor(() => results.has(correlationId), 15_000, 'the final getStatus result');
      const result = results.get(correlationId)?.event.commandResult;
      alive = result?.ok === true && result.status != null;
      if (!alive) p.fail(`final getStatus answered, but not ok: ${JSON.stringify(result)}`);
    } catch (error) {
      p.fail(String(error));
    }
    // Give any late (wrong) ring a moment to show.
    await sleep(300);
    const controlsAnsweredOk = controlIds.filter(
      (id) => results.get(id)?.event.commandResult?.ok === true,
    ).length;
    if (controlsAnsweredOk !== controlIds.length) {
      p.fail(`only ${controlsAnsweredOk} of ${controlIds.length} getStatus controls answered ok over MQTT`);
    }
    const chimeRings = device.hal.sim?.chimeHistory().filter((change) => change.on).length ?? -1;
    if (chimeRings !== 0) p.fail(`the chime rang ${chimeRings} times; no valid ring command was sent`);
    // No fuzzed message may change who is trusted: one configured key, no owner, epoch 0.
    const enrolled = device.trust.list().map((k) => k.key.keyId);
    if (
      enrolled.length !== 1 ||
      enrolled[0] !== p.hubKey.keyId ||
      device.trust.isPaired ||
      device.trust.epoch !== 0
    ) {
      wronglyAccepted += 1;
      p.fail(
        `the fuzz stream changed the enrolment: keys ${enrolled.join(',')}, epoch ${device.trust.epoch}`,
      );
    }
    return {
      sent,
      controls: controlIds.length,
      controlsAnsweredOk,
      crashes,
      wronglyAccepted,
      alive,
      errorLogs,
      chimeRings,
      expectedRings: 0,
    };
  } finally {
    await raw?.endAsync().catch(() => undefined);
    await Promise.allSettled([device?.stop(), hub?.stop()]);
    await broker?.stop();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** `npm run bench -- fuzz-commands [--cases N] [--seed S]`; exits 1 on any finding. */
export async function fuzzCommandsBench(args: BenchArgs): Promise<Record<string, unknown>> {
  const result = await fuzzCommands({
    cases: args.cases,
    ...(args.seed !== undefined ? { seed: args.seed } : {}),
  });
  for (const failure of result.failures) process.stderr.write(`fuzz-commands: ${failure}\n`);
  if (!result.ok) process.exitCode = 1;
  return result;
}
