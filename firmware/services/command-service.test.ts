import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { silentLogger } from '../../common/logger.js';
import type { Chime, RingResult } from '../../hal/index.js';
import {
  doorbell,
  generateSigningKey,
  newCorrelationId,
  ReplayGuard,
  sealCommand,
  topicsFor,
  verifyKeyOf,
} from '../../proto/index.js';
import { Role } from '../../proto/roles.js';
import { auditOrigin, auditVerifier, checkAuditConsistency } from '../../proto/tlog/audit.js';
import { AuditLog } from '../audit-log.js';
import { TrustStore } from '../trust/trust-store.js';
import { CommandService } from './command-service.js';
import type { EventBody } from './event-signer.js';
import { RateLimit } from './rate-limit.js';

const { ErrorKind } = doorbell.v1;
const DEVICE = 'front-door';
const TOPIC = topicsFor(DEVICE).cmd;
const NOW = 1_750_000_000_000;
const hubKey = generateSigningKey();

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

class FakeChime implements Chime {
  readonly name = 'fake';
  readonly mode = 'electronic' as const;
  readonly ringing = false;
  rings = 0;
  ring(): RingResult {
    this.rings += 1;
    return { started: true };
  }
  async close(): Promise<void> {}
}

function ringCommand(counter: number, issuedAtMs = NOW - 1000, lifetimeMs = 30_000): Uint8Array {
  return sealCommand(
    {
      header: {
        deviceId: DEVICE,
        topic: TOPIC,
        counter,
        issuedAtMs,
        expiresAtMs: issuedAtMs + lifetimeMs,
        correlationId: newCorrelationId(),
      },
      ringChimeTest: {},
    },
    hubKey,
  );
}

async function setup(replay?: ReplayGuard, logger = silentLogger(), nowMs = () => NOW) {
  const dir = await mkdtemp(join(tmpdir(), 'command-service-trust-'));
  dirs.push(dir);
  const trust = await TrustStore.open(dir, [{ key: verifyKeyOf(hubKey), role: Role.OPERATE }], {
    logger: silentLogger(),
  });
  const chime = new FakeChime();
  const replies: { body: EventBody; correlationId: string | undefined }[] = [];
  const service = new CommandService({
    deviceId: DEVICE,
    commandTopic: TOPIC,
    trust,
    chime,
    status: () => ({}),
    reply: (body, correlationId) => replies.push({ body, correlationId }),
    errorReplies: new RateLimit(100, () => NOW),
    nowMs,
    logger,
    ...(replay ? { replay } : {}),
  });
  return { chime, replies, service };
}

async function guardPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'command-service-'));
  dirs.push(dir);
  return join(dir, 'replay.json');
}

describe('replay protection in the command service', () => {
  test('the same sealed command delivered twice rings once and is answered once', async () => {
    const { chime, replies, service } = await setup(await ReplayGuard.open(await guardPath()));
    const sealed = ringCommand(1);
    service.handle(TOPIC, sealed, false);
    service.handle(TOPIC, sealed, false); // a QoS 1 redelivery
    assert.equal(chime.rings, 1);
    assert.equal(replies.length, 1, 'the duplicate is dropped silently: its result was already sent');
    assert.equal(replies[0]?.body.commandResult?.ok, true);
  });

  test('without a guard the duplicate rings twice (the guard is what the previous test proves)', async () => {
    const { chime, service } = await setup();
    const sealed = ringCommand(1);
    service.handle(TOPIC, sealed, false);
    service.handle(TOPIC, sealed, false);
    assert.equal(chime.rings, 2);
  });

  test('a command replayed after a restart does not ring and gets a signed REPLAY error', async () => {
    const path = await guardPath();
    const sealed = ringCommand(5);
    const first = await setup(await ReplayGuard.open(path));
    first.service.handle(TOPIC, sealed, false);
    assert.equal(first.chime.rings, 1);
    const second = await setup(await ReplayGuard.open(path)); // restart without a clean stop
    second.service.handle(TOPIC, sealed, false);
    assert.equal(second.chime.rings, 0);
    assert.equal(second.replies.length, 1);
    assert.equal(second.replies[0]?.body.commandResult?.errorKind, ErrorKind.REPLAY);
  });

  test('a command living longer than 30 s is refused as EXPIRED by default', async () => {
    const { chime, replies, service } = await setup();
    service.handle(TOPIC, ringCommand(1, NOW - 1000, 30_001), false);
    assert.equal(chime.rings, 0);
    assert.equal(replies[0]?.body.commandResult?.errorKind, ErrorKind.EXPIRED);
    assert.match(replies[0]?.body.commandResult?.errorMessage ?? '', /lifetime/);
  });

  test('a failed replay-state write refuses the command with INTERNAL and does not ring', async () => {
    const path = await guardPath();
    const guard = await ReplayGuard.open(path);
    await rm(join(path, '..'), { recursive: true });
    const { chime, replies, service } = await setup(guard);
    service.handle(TOPIC, ringCommand(1), false);
    assert.equal(chime.rings, 0);
    assert.equal(replies[0]?.body.commandResult?.errorKind, ErrorKind.INTERNAL);
  });
});

describe('refusals', () => {
  test('a flood of 5,000 refused commands writes at most 20 log lines a second, and the next line counts the rest', async () => {
    const lines: { msg: string; unloggedRefusals?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    let now = NOW;
    const { service } = await setup(undefined, logger, () => now);
    const stranger = generateSigningKey();
    for (let i = 0; i < 5_000; i++) {
      // Signed by a key the device does not know: refused as UNKNOWN_KEY.
      service.handle(
        TOPIC,
        sealCommand(
          {
            header: {
              deviceId: DEVICE,
              topic: TOPIC,
              counter: i + 1,
              issuedAtMs: NOW - 1000,
              expiresAtMs: NOW + 9000,
              correlationId: newCorrelationId(),
            },
            getStatus: {},
          },
          stranger,
        ),
        false,
      );
    }
    const refused = lines.filter((l) => l.msg === 'command rejected');
    assert.equal(refused.length, 20, 'one second of refusals is logged at most 20 times');
    now += 1000;
    service.handle(TOPIC, new Uint8Array([0xff]), false);
    const next = lines.filter((l) => l.msg === 'command rejected').at(-1);
    assert.equal(next?.unloggedRefusals, 4_980, 'the next line logged says how many were not');
  });

  test('an answer that cannot be sealed is answered INTERNAL, and handle never throws', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'command-service-seal-'));
    dirs.push(dir);
    const trust = await TrustStore.open(dir, [{ key: verifyKeyOf(hubKey), role: Role.OPERATE }], {
      logger: silentLogger(),
    });
    const answers: EventBody[] = [];
    const service = new CommandService({
      deviceId: DEVICE,
      commandTopic: TOPIC,
      trust,
      chime: new FakeChime(),
      status: () => ({}),
      reply: (body) => {
        if (body.commandResult?.ok) throw new Error('cannot seal this');
        answers.push(body);
      },
      errorReplies: new RateLimit(100, () => NOW),
      nowMs: () => NOW,
      logger: silentLogger(),
    });
    await service.handle(TOPIC, ringCommand(1), false);
    assert.equal(answers.length, 1);
    assert.equal(answers[0]?.commandResult?.errorKind, ErrorKind.INTERNAL);
  });
});

describe('answer budgets', () => {
  function getStatusFrom(
    key: ReturnType<typeof generateSigningKey>,
    counter: number,
    issuedAtMs = NOW - 1000,
  ): Uint8Array {
    return sealCommand(
      {
        header: {
          deviceId: DEVICE,
          topic: TOPIC,
          counter,
          issuedAtMs,
          expiresAtMs: issuedAtMs + 9000,
          correlationId: newCorrelationId(),
        },
        getStatus: {},
      },
      key,
    );
  }

  test('a key below Administer gets at most 20 answers a second, and its flood leaves other keys answered', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'command-service-budget-'));
    dirs.push(dir);
    const view = generateSigningKey();
    const trust = await TrustStore.open(
      dir,
      [
        { key: verifyKeyOf(hubKey), role: Role.OPERATE },
        { key: verifyKeyOf(view), role: Role.VIEW },
      ],
      { logger: silentLogger() },
    );
    const answers: { body: EventBody; correlationId: string | undefined }[] = [];
    const service = new CommandService({
      deviceId: DEVICE,
      commandTopic: TOPIC,
      trust,
      chime: new FakeChime(),
      status: () => ({}),
      reply: (body, correlationId) => answers.push({ body, correlationId }),
      errorReplies: new RateLimit(10, () => NOW),
      nowMs: () => NOW,
      logger: silentLogger(),
    });
    for (let i = 1; i <= 1_000; i++) await service.handle(TOPIC, getStatusFrom(view, i), false);
    assert.equal(answers.length, 20, 'one second of a flood is answered 20 times');
    await service.handle(TOPIC, ringCommand(1), false);
    assert.equal(answers.length, 21);
    assert.equal(answers[20]?.body.commandResult?.ok, true, "the hub's command is still answered");
  });

  test("a stranger's flood does not silence the REPLAY answer an enrolled key needs", async () => {
    const path = await guardPath();
    const guard = await ReplayGuard.open(path);
    guard.accept(hubKey.keyId, 50, NOW - 1000);
    const { replies, service } = await setup(guard);
    const stranger = generateSigningKey();
    for (let i = 1; i <= 500; i++) await service.handle(TOPIC, getStatusFrom(stranger, i), false);
    const before = replies.length;
    await service.handle(TOPIC, ringCommand(10), false); // below the hub's window: too old
    assert.equal(replies.length, before + 1, 'answered despite the flood');
    assert.equal(replies.at(-1)?.body.commandResult?.errorKind, ErrorKind.REPLAY);
    assert.equal(replies.at(-1)?.body.commandResult?.nextCounter, 51);
  });
});

describe('GetAuditConsistency', () => {
  test('no size, more than 8 and a size beyond the log are INVALID_ARGUMENT; an answer proves each size it names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'command-service-consistency-'));
    dirs.push(dir);
    const view = generateSigningKey();
    const deviceKey = generateSigningKey();
    const trust = await TrustStore.open(dir, [{ key: verifyKeyOf(view), role: Role.VIEW }], {
      logger: silentLogger(),
    });
    const audit = await AuditLog.open(dir, { deviceId: DEVICE, key: deviceKey });
    const kept: { note: string; seenAtMs: number }[] = [];
    for (let n = 0; n < 5; n++) {
      await audit.append('keys.added', { n });
      kept.push({ note: audit.checkpoint(), seenAtMs: n });
    }
    const answers: EventBody[] = [];
    const service = new CommandService({
      deviceId: DEVICE,
      commandTopic: TOPIC,
      trust,
      chime: new FakeChime(),
      status: () => ({}),
      reply: (body) => answers.push(body),
      errorReplies: new RateLimit(100, () => NOW),
      nowMs: () => NOW,
      logger: silentLogger(),
      audit,
    });
    let counter = 0;
    const ask = async (fromSizes: number[]) => {
      counter += 1;
      const command = sealCommand(
        {
          header: {
            deviceId: DEVICE,
            topic: TOPIC,
            counter,
            issuedAtMs: NOW - 1000,
            expiresAtMs: NOW + 8000,
            correlationId: newCorrelationId(),
          },
          getAuditConsistency: { fromSizes },
        },
        view,
      );
      await service.handle(TOPIC, command, false);
      return answers.at(-1)?.commandResult;
    };
    for (const sizes of [[], [1, 2, 3, 4, 5, 1, 2, 3, 4], [6], [2, 6]]) {
      const r = await ask(sizes);
      assert.equal(r?.ok, false, `sizes ${sizes}`);
      assert.equal(r?.errorKind, ErrorKind.INVALID_ARGUMENT, `sizes ${sizes}: ${r?.errorMessage}`);
    }
    const r = await ask([1, 2, 3, 4, 5]);
    assert.equal(r?.ok, true, r?.errorMessage ?? '');
    const got = r?.auditConsistency;
    const check = checkAuditConsistency(
      kept,
      {
        checkpoint: got?.checkpoint ?? '',
        proofs: (got?.proofs ?? []).map((p) => ({ fromSize: Number(p.fromSize), hashes: p.hashes ?? [] })),
      },
      auditVerifier(DEVICE, verifyKeyOf(deviceKey)),
      auditOrigin(DEVICE, deviceKey.keyId),
    );
    assert.deepEqual(check.problems, []);
    assert.equal(check.size, 5);
  });
});
