import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { boardPaths } from '../../board/board-files.js';
import { buildBundle, keyMap } from '../../board/manifest.js';
import { commit, installToInactiveSlot, readBootState, switchToTrial } from '../../board/slots.js';
import { silentLogger } from '../../common/logger.js';
import type { Chime, RingResult } from '../../hal/index.js';
import {
  doorbell,
  generateSigningKey,
  newCorrelationId,
  publicKeyToText,
  sealCommand,
  topicsFor,
  verifyKeyOf,
} from '../../proto/index.js';
import { Role } from '../../proto/roles.js';
import { readDeviceAudit } from '../../test-support/device-audit.js';
import { AuditLog } from '../audit-log.js';
import { CommandService } from '../services/command-service.js';
import type { EventBody } from '../services/event-signer.js';
import { RateLimit } from '../services/rate-limit.js';
import { TrustStore } from '../trust/trust-store.js';
import { MAX_OTA_CHUNK_BYTES, UpdateAgent } from './agent.js';

const { ErrorKind } = doorbell.v1;
const HW = 'open-doorbell/sim-x64';
const release = generateSigningKey();
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const meta = (version: string, securityCounter: number) => ({
  hardware: HW,
  version,
  securityCounter,
  createdAtMs: Date.now() - 1000,
  expiresAtMs: Date.now() + 86_400_000,
  development: false,
  entry: 'doorbell.js',
});
const files = (tag: string) => [
  { path: 'doorbell.js', data: Buffer.from(`// ${tag}\n${'x'.repeat(40_000)}\n`), executable: true },
  { path: 'config.default.json', data: Buffer.from('{}\n') },
];
const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/** A board root flashed with v1 (committed), and an agent on it. */
async function board() {
  const dir = await mkdtemp(join(tmpdir(), 'ota-agent-'));
  dirs.push(dir);
  const root = join(dir, 'root');
  const trust = { keys: keyMap([release]), hardware: HW, allowDevelopment: false };
  const v1 = join(dir, 'v1.bundle');
  await writeFile(v1, buildBundle(files('v1'), meta('1.0.0', 1), release));
  const { slot } = await installToInactiveSlot(root, v1, { trust });
  await switchToTrial(root, slot, { trust });
  await commit(root, { trust });
  const paths = boardPaths(root);
  await mkdir(join(root, 'etc', 'doorbell'), { recursive: true });
  await writeFile(paths.hardware, `${HW}\n`);
  await writeFile(paths.releaseKeys, `${publicKeyToText(release)}\n`);
  const stateDir = join(root, 'state');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const events: doorbell.v1.IOtaProgress[] = [];
  const restarts: string[] = [];
  const deviceKey = generateSigningKey();
  const open = async () =>
    UpdateAgent.open({
      root,
      stateDir,
      logger: silentLogger(),
      nowMs: Date.now,
      audit: await AuditLog.open(stateDir, { deviceId: 'test-door', key: deviceKey }),
      emit: (body: EventBody) => {
        if (body.otaProgress) events.push(body.otaProgress);
      },
      requestRestart: (reason) => restarts.push(reason),
      maxBundleBytes: 1024 * 1024,
    });
  return { dir, root, stateDir, events, restarts, open, deviceKey, agent: await open() };
}

async function sendAll(agent: UpdateAgent, bundle: Buffer, from = 0): Promise<doorbell.v1.ICommandResult> {
  let r: doorbell.v1.ICommandResult = { ok: true };
  for (let at = from; at < bundle.length; at += MAX_OTA_CHUNK_BYTES) {
    r = await agent.chunk({
      bundleSha256: sha(bundle),
      offset: at,
      data: bundle.subarray(at, at + MAX_OTA_CHUNK_BYTES),
    });
    if (!r.ok) return r;
  }
  return r;
}

describe('the update agent', () => {
  test('validates sizes and hashes with typed errors', async () => {
    const { agent } = await board();
    const s = Buffer.alloc(32, 1);
    assert.equal(
      (await agent.begin({ bundleSize: 0, bundleSha256: s })).errorKind,
      ErrorKind.INVALID_ARGUMENT,
    );
    assert.equal(
      (await agent.begin({ bundleSize: 1024 * 1024 + 1, bundleSha256: s })).errorKind,
      ErrorKind.INVALID_ARGUMENT,
      'above the cap',
    );
    assert.equal(
      (await agent.begin({ bundleSize: 1000, bundleSha256: Buffer.alloc(31) })).errorKind,
      ErrorKind.INVALID_ARGUMENT,
    );
    assert.equal((await agent.begin({ bundleSize: 1000, bundleSha256: s })).ok, true);
    const big = { bundleSha256: s, offset: 0, data: Buffer.alloc(MAX_OTA_CHUNK_BYTES + 1) };
    assert.equal((await agent.chunk(big)).errorKind, ErrorKind.INVALID_ARGUMENT, 'a chunk above 12 KiB');
    const beyond = { bundleSha256: s, offset: 0, data: Buffer.alloc(1001) };
    assert.equal((await agent.chunk(beyond)).errorKind, ErrorKind.INVALID_ARGUMENT, 'beyond the bundle');
    const other = { bundleSha256: Buffer.alloc(32, 2), offset: 0, data: Buffer.alloc(10) };
    assert.equal((await agent.chunk(other)).errorKind, ErrorKind.INVALID_ARGUMENT, 'another transfer');
    assert.equal(
      (await agent.apply({ bundleSha256: s })).errorKind,
      ErrorKind.INVALID_ARGUMENT,
      'incomplete',
    );
  });

  test('chunks are idempotent; a transfer resumes after a restart; apply switches and asks for a restart', async () => {
    const b = await board();
    const v2 = buildBundle(files('v2'), meta('2.0.0', 2), release);
    const s = sha(v2);
    assert.equal((await b.agent.begin({ bundleSize: v2.length, bundleSha256: s })).otaState?.nextOffset, 0);
    const first = { bundleSha256: s, offset: 0, data: v2.subarray(0, MAX_OTA_CHUNK_BYTES) };
    assert.equal((await b.agent.chunk(first)).otaState?.nextOffset, MAX_OTA_CHUNK_BYTES);
    assert.equal((await b.agent.chunk(first)).otaState?.nextOffset, MAX_OTA_CHUNK_BYTES, 'a duplicate');
    const ahead = { bundleSha256: s, offset: 3 * MAX_OTA_CHUNK_BYTES, data: v2.subarray(0, 100) };
    assert.equal((await b.agent.chunk(ahead)).otaState?.nextOffset, MAX_OTA_CHUNK_BYTES, 'out of order');
    const part = await readFile(join(b.stateDir, 'ota', 'bundle.part'));
    assert.deepEqual(part, v2.subarray(0, MAX_OTA_CHUNK_BYTES), 'nothing was corrupted');
    assert.ok(
      b.events.some((e) => e.stage === 'verified'),
      'the manifest was verified on arrival',
    );

    const again = await b.open(); // the daemon restarted
    const resumed = await again.begin({ bundleSize: v2.length, bundleSha256: s });
    assert.equal(resumed.otaState?.nextOffset, MAX_OTA_CHUNK_BYTES);
    assert.equal((await sendAll(again, v2, MAX_OTA_CHUNK_BYTES)).otaState?.nextOffset, v2.length);
    const applied = await again.apply({ bundleSha256: s });
    assert.equal(applied.ok, true, applied.errorMessage ?? '');
    const state = await readBootState(b.root);
    assert.equal(state.trial, applied.otaState?.trialSlot);
    await new Promise((r) => setImmediate(r));
    assert.equal(b.restarts.length, 1);
    assert.equal((await again.begin({ bundleSize: 1000, bundleSha256: s })).errorKind, ErrorKind.BUSY);
    assert.deepEqual(await readdir(join(b.stateDir, 'ota')), ['pending.json'], 'staging removed after apply');
    const stages = b.events.map((e) => e.stage);
    for (const st of ['begun', 'verified', 'received', 'written', 'switched'])
      assert.ok(stages.includes(st), st);
    const audit = await readDeviceAudit(b.stateDir, 'test-door', verifyKeyOf(b.deviceKey));
    assert.deepEqual(audit.problems, []);
    for (const st of ['begun', 'verified', 'received', 'written', 'switched'])
      assert.ok(
        audit.entries.some((e) => e.event === `ota.${st}`),
        `ota.${st} in the audit log`,
      );
  });

  test('a bad signature is refused as soon as the manifest has arrived, and the staging is discarded', async () => {
    const b = await board();
    const forged = buildBundle(files('evil'), meta('9.0.0', 9), generateSigningKey());
    const s = sha(forged);
    await b.agent.begin({ bundleSize: forged.length, bundleSha256: s });
    const r = await b.agent.chunk({
      bundleSha256: s,
      offset: 0,
      data: forged.subarray(0, MAX_OTA_CHUNK_BYTES),
    });
    assert.equal(r.errorKind, ErrorKind.UPDATE_REFUSED);
    assert.match(r.errorMessage ?? '', /unknown-key/);
    assert.equal(b.events.at(-1)?.stage, 'refused');
    assert.deepEqual(await readdir(join(b.stateDir, 'ota')), []);
  });

  test('without a flashed board the command service answers OTA commands with UNSUPPORTED_COMMAND', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ota-unsupported-'));
    dirs.push(dir);
    const owner = generateSigningKey();
    const trust = await TrustStore.open(dir, [{ key: verifyKeyOf(owner), role: Role.ADMINISTER }], {
      logger: silentLogger(),
    });
    const replies: EventBody[] = [];
    const chime: Chime = {
      name: 'fake',
      mode: 'electronic',
      ringing: false,
      ring: (): RingResult => ({ started: true }),
      close: async () => undefined,
    };
    const topic = topicsFor('front-door').cmd;
    const service = new CommandService({
      deviceId: 'front-door',
      commandTopic: topic,
      trust,
      chime,
      status: () => ({}),
      reply: (body) => replies.push(body),
      errorReplies: new RateLimit(100, Date.now),
      nowMs: Date.now,
      logger: silentLogger(),
    });
    const now = Date.now();
    await service.handle(
      topic,
      sealCommand(
        {
          header: {
            deviceId: 'front-door',
            topic,
            counter: 1,
            issuedAtMs: now,
            expiresAtMs: now + 9000,
            correlationId: newCorrelationId(),
          },
          otaBegin: { bundleSize: 1000, bundleSha256: Buffer.alloc(32) },
        },
        owner,
      ),
      false,
    );
    assert.equal(replies[0]?.commandResult?.errorKind, ErrorKind.UNSUPPORTED_COMMAND);
    assert.match(replies[0]?.commandResult?.errorMessage ?? '', /DOORBELL_ROOT/);
  });
});
