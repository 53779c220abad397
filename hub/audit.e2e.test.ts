import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { verifyCheckpoint } from '@sigstore/verify/dist/tlog/checkpoint.js';
import { verifyMerkleInclusion } from '@sigstore/verify/dist/tlog/merkle.js';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { generateSigningKey, loadOrCreateSigningKey, publicKeyToText, verifyKeyOf } from '../proto/index.js';
import {
  auditLeaf,
  auditOrigin,
  auditVerifier,
  parseAuditLine,
  verifyAuditProof,
} from '../proto/tlog/audit.js';
import { inclusionProof } from '../proto/tlog/merkle.js';
import { formatProof, parseProof } from '../proto/tlog/proof.js';
import { docCommand, runDocCommand } from '../test-support/doc-commands.js';
import { type Harness, startHarness } from '../test-support/doorbell-harness.js';
import { runCli } from '../test-support/run-cli.js';
import { addDevice, hubKeyPath, setDeviceHubRole } from './hub-state.js';
import { ShareStore } from './shares/requests.js';

/**
 * The device's audit log as a transparency log, end to end: the daemon logs
 * key changes, signs checkpoints with its key, answers GetAudit; the hub
 * (`doorbell-hub audit`) keeps the checkpoints it saw and catches a history
 * edited, cut or with an entry deleted on the device's storage, even when
 * the device signs the altered log. Oracle: sigstore's own checkpoint and
 * RFC 6962 inclusion verification (@sigstore/verify).
 */
let broker: RunningBroker;
let h: Harness;
let work: string;
let hubState: string;

const logFile = (stateDir: string) => join(stateDir, 'audit', 'log.jsonl');

/** Enrols `n` view keys with the hub's CLI (its key and counter are this hub's). */
async function addKeys(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const key = publicKeyToText(generateSigningKey());
    const r = await runCli('hub/cli.ts', [
      'keys',
      'add',
      'front-door',
      key,
      '--role',
      'view',
      '--label',
      `phone-${i}`,
      '--as',
      'hub',
      '--broker',
      broker.url,
      '--state-dir',
      hubState,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }
}

async function audit(
  how: '--verify' | '--consistency' = '--verify',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const documented = {
    '--verify': docCommand('docs/footage.md', 'npm run doorbell-hub -- audit front-door --verify'),
    '--consistency': docCommand('docs/footage.md', 'npm run doorbell-hub -- audit front-door --consistency'),
  };
  const run = runDocCommand(documented[how].text, {
    env: { DOORBELL_HUB_STATE: hubState, DOORBELL_HUB_BROKER: broker.url },
  });
  const code = await run.exited(60_000);
  return { code, stdout: run.stdout, stderr: run.stderr };
}

before(async () => {
  broker = await startMosquitto();
  work = await mkdtemp(join(tmpdir(), 'doorbell-audit-'));
  hubState = join(work, 'hub');
  const { key: hubKey } = await loadOrCreateSigningKey(hubKeyPath(hubState));
  h = await startHarness(broker.url, { trust: { hubRole: 'administer' } }, hubKey);
  await addDevice(hubState, 'front-door', publicKeyToText(h.device.key), false);
  await addKeys(4);
});

after(async () => {
  await h?.stop();
  await broker?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('the audit log as a transparency log', { timeout: 120_000 }, () => {
  test('key changes are logged; the signed checkpoint and every inclusion proof verify with sigstore', async () => {
    const checkpoint = await h.waitForEvent(
      (e) => e.event.auditCheckpoint?.note?.split('\n')[1] === '4',
      10_000,
      'a checkpoint of the four entries',
    );
    const note = checkpoint.event.auditCheckpoint?.note ?? '';
    const lines = (await readFile(logFile(join(h.dir, 'device')), 'utf8')).trim().split('\n');
    assert.deepEqual(
      lines.map((l) => parseAuditLine(l).event),
      ['keys.added', 'keys.added', 'keys.added', 'keys.added'],
    );
    const name = `open-doorbell/front-door`;
    const tlog = {
      logID: Buffer.concat([await keyHint(name, h.device.key.publicRaw), Buffer.alloc(28)]),
      baseURL: `https://${name}`,
      publicKey: h.device.key.publicKey,
      validFor: { start: new Date(0), end: new Date(8.64e15) },
    };
    const leaves = lines.map(auditLeaf);
    for (const [i, line] of lines.entries()) {
      const entry = {
        logIndex: String(i),
        canonicalizedBody: Buffer.from(line, 'utf8'),
        inclusionProof: {
          logIndex: String(i),
          treeSize: String(lines.length),
          rootHash: Buffer.alloc(32),
          hashes: inclusionProof(leaves, i),
          checkpoint: { envelope: note },
        },
      };
      // biome-ignore lint/suspicious/noExplicitAny: the oracle's entry type is a protobuf union we fill only in part
      const cp = verifyCheckpoint(entry as any, [tlog]);
      assert.equal(cp.logSize, 4n);
      // biome-ignore lint/suspicious/noExplicitAny: as above
      verifyMerkleInclusion(entry as any, cp);
    }
    // A checkpoint signed by another key is refused by the oracle too.
    const forged = { ...tlog, publicKey: generateSigningKey().publicKey };
    const entry = { inclusionProof: { checkpoint: { envelope: note } } };
    // biome-ignore lint/suspicious/noExplicitAny: as above
    assert.throws(() => verifyCheckpoint(entry as any, [forged]), /invalid checkpoint signature/);
  });

  test('audit --proof writes a C2SP tlog-proof of one entry that verifies offline, by our verifier and by sigstore', async () => {
    const out = join(work, 'entry-2.tlog-proof');
    const r = await runCli('hub/cli.ts', [
      'audit',
      'front-door',
      '--proof',
      '2',
      '-o',
      out,
      '--broker',
      broker.url,
      '--state-dir',
      hubState,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const text = await readFile(out, 'utf8');
    const key = verifyKeyOf(h.device.key);
    const { entry, index } = verifyAuditProof(
      text,
      auditVerifier('front-door', key),
      auditOrigin('front-door', key.keyId),
    );
    assert.equal(index, 1);
    assert.equal(entry.seq, 2);
    assert.equal(entry.event, 'keys.added');
    // Sigstore's verifier, fed the proof's parts.
    const p = parseProof(text);
    const name = 'open-doorbell/front-door';
    const tlog = {
      logID: Buffer.concat([await keyHint(name, h.device.key.publicRaw), Buffer.alloc(28)]),
      baseURL: `https://${name}`,
      publicKey: h.device.key.publicKey,
      validFor: { start: new Date(0), end: new Date(8.64e15) },
    };
    const sig = {
      canonicalizedBody: p.extra,
      inclusionProof: { logIndex: String(p.index), hashes: p.hashes, checkpoint: { envelope: p.checkpoint } },
    };
    // biome-ignore lint/suspicious/noExplicitAny: the oracle's entry type is a protobuf union we fill only in part
    verifyMerkleInclusion(sig as any, verifyCheckpoint(sig as any, [tlog]));
    // An entry swapped into the proof does not verify.
    const swapped = formatProof({
      ...p,
      extra: Buffer.from(entry.event === 'keys.added' ? '{}' : '', 'utf8'),
    });
    assert.throws(() =>
      verifyAuditProof(swapped, auditVerifier('front-door', key), auditOrigin('front-door', key.keyId)),
    );
  });

  test('doorbell-hub audit --verify: consistent, then a cut tail, a deleted entry and an edited one are each caught', async () => {
    const first = await audit();
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /audit log of front-door: 4 entries, consistent with 1 signed checkpoint/);
    const original = await readFile(logFile(join(h.dir, 'device')), 'utf8');
    const lines = original.trim().split('\n');
    const renumber = (ls: string[]) =>
      `${ls.map((l, n) => l.replace(/^\{"seq":\d+/, `{"seq":${n + 1}`)).join('\n')}\n`;

    const cases: [string, string, () => Promise<void>][] = [
      ['a cut tail', 'truncated', async () => {}],
      ['a deleted entry', 'rewritten', () => addKeys(2)],
      ['an edited entry', 'rewritten', async () => {}],
    ];
    const tampered = [
      renumber(lines.slice(0, 2)),
      renumber(lines.filter((_, i) => i !== 1)),
      renumber(
        lines.map((l, i) => (i === 2 ? l.replace(/"keyId":"[0-9a-f]+"/, '"keyId":"0000000000000000"') : l)),
      ),
    ];
    for (const t of tampered) assert.notEqual(t, original, 'each tampering changes the file');
    for (const [i, [what, verdict, after]] of cases.entries()) {
      await h.restartDevice((stateDir) => writeFile(logFile(stateDir), tampered[i] ?? ''));
      await after();
      const r = await audit();
      assert.equal(r.code, 1, `${what} went unnoticed: ${r.stdout}`);
      assert.match(r.stdout, new RegExp(`NOT CONSISTENT\\n  ${verdict}`), what);
      // Put the true history back: the hub finds it consistent again.
      await h.restartDevice((stateDir) => writeFile(logFile(stateDir), original));
      const again = await audit();
      assert.equal(again.code, 0, `${what}, restored: ${again.stdout}`);
    }
  });
});

describe('the audit log checked by consistency proofs', { timeout: 120_000 }, () => {
  test('audit --consistency: the grown log is proven to extend the kept checkpoints; a cut tail, a deleted entry and an edited one are each caught', async () => {
    // A check with the entries first: its checkpoint is kept as proven.
    const full = await audit();
    assert.equal(full.code, 0, full.stdout + full.stderr);
    await addKeys(1);
    const grown = await audit('--consistency');
    assert.equal(grown.code, 0, grown.stdout + grown.stderr);
    assert.match(
      grown.stdout,
      /audit log of front-door: \d+ entries, proven to extend 1 kept checkpoint\(s\)/,
    );
    const kept = (await readFile(join(hubState, 'audit', 'front-door.jsonl'), 'utf8')).trim().split('\n');
    const last = JSON.parse(kept.at(-1) ?? '{}') as { note: string; proven?: boolean };
    const original = await readFile(logFile(join(h.dir, 'device')), 'utf8');
    const lines = original.trim().split('\n');
    assert.equal(last.proven, true);
    assert.equal(
      last.note.split('\n')[1],
      String(lines.length),
      'the newest proven checkpoint covers the whole log',
    );

    const renumber = (ls: string[]) =>
      `${ls.map((l, n) => l.replace(/^\{"seq":\d+/, `{"seq":${n + 1}`)).join('\n')}\n`;
    const cases: [string, string, string, () => Promise<void>][] = [
      ['a cut tail', renumber(lines.slice(0, 2)), 'truncated', async () => {}],
      // Two entries more than were taken away: the log is longer than the hub saw it, yet rewritten.
      ['a deleted entry', renumber(lines.filter((_, i) => i !== 1)), 'rewritten', () => addKeys(2)],
      [
        'an edited entry',
        renumber(
          lines.map((l, i) => (i === 2 ? l.replace(/"keyId":"[0-9a-f]+"/, '"keyId":"0000000000000000"') : l)),
        ),
        'rewritten',
        async () => {},
      ],
    ];
    for (const [what, tampered, verdict, after] of cases) {
      assert.notEqual(tampered, original, `${what} changes the file`);
      await h.restartDevice((stateDir) => writeFile(logFile(stateDir), tampered));
      await after();
      const r = await audit('--consistency');
      assert.equal(r.code, 1, `${what} went unnoticed: ${r.stdout}`);
      assert.match(r.stdout, new RegExp(`NOT CONSISTENT\\n  ${verdict}`), what);
      await h.restartDevice((stateDir) => writeFile(logFile(stateDir), original));
      const again = await audit('--consistency');
      assert.equal(again.code, 0, `${what}, restored: ${again.stdout}`);
    }
  });
});

describe('footage requests', { timeout: 120_000 }, () => {
  test('share request, list, deny: each step is logged by the doorbell; an unanswered request expires, is logged so, and cannot be denied', async () => {
    await setDeviceHubRole(hubState, 'front-door', 'administer');
    const { stdout: recipient } = await promisify(execFile)('sh', [
      '-c',
      'age-keygen 2>/dev/null | age-keygen -y',
    ]);
    const cli = (args: string[]) =>
      runCli('hub/cli.ts', [...args, '--broker', broker.url, '--state-dir', hubState]);
    const file = async (extra: string[]) => {
      const r = await cli([
        'share',
        'request',
        'front-door',
        '--name',
        'neighbour',
        '--reason',
        'a parcel went missing',
        '--since',
        '2026-12-01T00:00:00Z',
        '--until',
        '2026-12-02T00:00:00Z',
        '--recipient',
        recipient.trim(),
        '--json',
        ...extra,
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return JSON.parse(r.stdout) as { id: string; expiresAtMs: number; auditIndex: number };
    };
    const kept = await file([]);
    const soon = await file([]);
    // Its week passes: the hub's record of it says it expired a moment ago.
    const requests = new ShareStore(hubState);
    const filed = await requests.get(soon.id);
    assert.ok(filed);
    await requests.put({ ...filed, expiresAtMs: Date.now() - 1 });

    const listed = await cli(['share', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const states = Object.fromEntries(
      listed.stdout
        .trim()
        .split('\n')
        .map((l) => [JSON.parse(l).id, JSON.parse(l).state]),
    );
    assert.deepEqual(states, { [kept.id]: 'open', [soon.id]: 'expired' });

    const denied = await cli(['share', 'deny', kept.id]);
    assert.equal(denied.code, 0, denied.stdout + denied.stderr);
    assert.equal((await cli(['share', 'deny', soon.id])).code, 2, 'an expired request cannot be answered');

    const log = await cli(['audit', 'front-door']);
    assert.equal(log.code, 0, log.stdout);
    const shares = log.stdout.split('\n').filter((l) => / share\./.test(l));
    assert.deepEqual(
      shares.map((l) => / (share\.[a-z]+) +request=([0-9a-f]+)/.exec(l)?.slice(1)),
      [
        ['share.requested', kept.id],
        ['share.requested', soon.id],
        ['share.expired', soon.id],
        ['share.denied', kept.id],
      ],
    );
    assert.ok(
      shares.every((l) => !l.includes(recipient.trim())),
      'the requester is logged by fingerprint only',
    );
  });
});

/** The signed-note key hint, computed here from the C2SP definition: SHA-256(name || "\n" || 0x01 || key)[:4]. */
async function keyHint(name: string, publicRaw: Uint8Array): Promise<Buffer> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`), Uint8Array.of(1), publicRaw]))
    .digest()
    .subarray(0, 4);
}
