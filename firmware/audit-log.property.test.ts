import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../common/clock.js';
import { generateSigningKey, verifyKeyOf } from '../proto/index.js';
import {
  auditLeaf,
  auditOrigin,
  auditVerifier,
  checkAuditConsistency,
  checkAuditLog,
  formatAuditLine,
  parseAuditLine,
  type SeenCheckpoint,
} from '../proto/tlog/audit.js';
import { rootOf } from '../proto/tlog/merkle.js';
import { openNote, parseCheckpoint } from '../proto/tlog/note.js';
import { AuditLog, CHECKPOINT_DELAY_MS } from './audit-log.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'audit-log-'));
  dirs.push(d);
  return d;
}

const DEVICE = 'front-door';
const field = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean());
const entryArb = fc.record({
  event: fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/),
  data: fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,10}$/), field, { maxKeys: 4 }),
});

async function openLog(stateDir: string, key = generateSigningKey(), clock = new FakeClock()) {
  const notes: string[] = [];
  let signed: (note: string) => void = () => {};
  const log = await AuditLog.open(stateDir, {
    deviceId: DEVICE,
    key,
    clock,
    onCheckpoint: (n) => {
      notes.push(n);
      signed(n);
    },
  });
  /** Resolves with the next checkpoint handed to the hub. */
  const nextNote = () =>
    new Promise<string>((r) => {
      signed = r;
    });
  return { log, notes, key, clock, nextNote };
}

const logPath = (stateDir: string) => join(stateDir, 'audit', 'log.jsonl');
const linesOf = async (stateDir: string) =>
  (await readFile(logPath(stateDir), 'utf8')).slice(0, -1).split('\n');

describe('the audit log (a transparency log)', () => {
  it('the entry parser never throws anything but Error on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        try {
          parseAuditLine(text);
        } catch (err) {
          assert.ok(err instanceof Error);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a batch of appends is followed by one signed checkpoint of the whole log, on disk and to the hub', async () => {
    const stateDir = await tempDir();
    const { log, notes, key, clock, nextNote } = await openLog(stateDir);
    await log.append('clip.created', { id: 'a' });
    await log.append('footage.fetched', { id: 'a', by: 'k' });
    assert.equal(notes.length, 0, 'not before the batch delay');
    const note = nextNote();
    clock.advance(CHECKPOINT_DELAY_MS);
    await note;
    assert.equal(notes.length, 1, 'one checkpoint for the batch');
    const onDisk = await readFile(join(stateDir, 'audit', 'checkpoint'), 'utf8');
    assert.equal(onDisk, notes[0]);
    const check = checkAuditLog(
      await linesOf(stateDir),
      [{ note: onDisk, seenAtMs: 0 }],
      auditVerifier(DEVICE, verifyKeyOf(key)),
      auditOrigin(DEVICE, key.keyId),
    );
    assert.deepEqual(check.problems, []);
    assert.equal(check.checkedSize, 2);
    assert.deepEqual(
      check.entries.map((e) => e.event),
      ['clip.created', 'footage.fetched'],
    );
  });

  it('edited, deleted, reordered or cut entries, even re-signed with the device key, contradict a checkpoint seen before', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { minLength: 2, maxLength: 10 }),
        fc.nat(),
        fc.constantFrom('edit', 'delete', 'swap', 'truncate'),
        async (entries, pick, how) => {
          const stateDir = await tempDir();
          const { log, key } = await openLog(stateDir);
          // Each entry distinct (as real ones are: ids, times), so that every change is a change.
          for (const [n, e] of entries.entries()) await log.append(e.event, { ...e.data, n });
          const seen: SeenCheckpoint[] = [{ note: log.checkpoint(), seenAtMs: 1 }];
          // Someone with the board's storage (and so its key) rewrites the file and restarts.
          const lines = await linesOf(stateDir);
          const i = pick % (lines.length - 1);
          let changed = [...lines];
          if (how === 'edit')
            changed[i] = (changed[i] ?? '').replace(/"atMs":(\d+)/, (_, n) => `"atMs":${Number(n) + 1}`);
          else if (how === 'delete') changed.splice(i, 1);
          else if (how === 'swap') [changed[i], changed[i + 1]] = [changed[i + 1] ?? '', changed[i] ?? ''];
          else changed = changed.slice(0, i + 1);
          // Renumbered so that every line parses: the forger's best effort.
          changed = changed.map((l, n) => l.replace(/^\{"seq":\d+/, `{"seq":${n + 1}`));
          await writeFile(logPath(stateDir), `${changed.join('\n')}\n`);
          const reopened = await openLog(stateDir, key);
          seen.push({ note: reopened.log.checkpoint(), seenAtMs: 2 });
          const check = checkAuditLog(
            await linesOf(stateDir),
            seen,
            auditVerifier(DEVICE, verifyKeyOf(key)),
            auditOrigin(DEVICE, key.keyId),
          );
          assert.equal(check.problems.length, 1, `${how} of entry ${i + 1}: ${check.problems}`);
          // A deletion that leaves fewer entries than were signed may read as a cut tail: it is one.
          assert.match(check.problems[0] ?? '', how === 'truncate' ? /^truncated/ : /^(rewritten|truncated)/);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('consistency proofs: an honest log proves it extends every earlier checkpoint; a rewritten or cut one, re-signed, proves none', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { minLength: 2, maxLength: 10 }),
        fc.nat(),
        fc.constantFrom('none', 'edit', 'delete', 'swap', 'truncate'),
        fc.integer({ min: 0, max: 3 }),
        async (entries, pick, how, grow) => {
          const stateDir = await tempDir();
          const { log, key } = await openLog(stateDir);
          const verifier = auditVerifier(DEVICE, verifyKeyOf(key));
          const origin = auditOrigin(DEVICE, key.keyId);
          // A checkpoint kept after each append: every size from 1 to n.
          const seen: SeenCheckpoint[] = [];
          for (const [n, e] of entries.entries()) {
            await log.append(e.event, { ...e.data, n });
            seen.push({ note: log.checkpoint(), seenAtMs: n });
          }
          const lines = await linesOf(stateDir);
          const i = pick % (lines.length - 1);
          let changed = [...lines];
          if (how === 'edit')
            changed[i] = (changed[i] ?? '').replace(/"atMs":(\d+)/, (_, n) => `"atMs":${Number(n) + 1}`);
          else if (how === 'delete') changed.splice(i, 1);
          else if (how === 'swap') [changed[i], changed[i + 1]] = [changed[i + 1] ?? '', changed[i] ?? ''];
          else if (how === 'truncate') changed = changed.slice(0, i + 1);
          changed = changed.map((l, n) => l.replace(/^\{"seq":\d+/, `{"seq":${n + 1}`));
          await writeFile(logPath(stateDir), `${changed.join('\n')}\n`);
          const reopened = await openLog(stateDir, key);
          // The forger appends a few entries more, which hides a deletion's or a cut's size.
          for (let g = 0; g < grow; g++) await reopened.log.append('keys.added', { g });
          const sizes = seen.map((_, n) => n + 1).filter((n) => n <= reopened.log.size);
          const { checkpoint, proofs } = reopened.log.consistency(sizes);
          const check = checkAuditConsistency(
            seen,
            { checkpoint, proofs: proofs.map((hashes, n) => ({ fromSize: sizes[n] ?? 0, hashes })) },
            verifier,
            origin,
          );
          if (how === 'none') {
            assert.deepEqual(check.problems, []);
            assert.equal(check.size, entries.length + grow);
          } else {
            // The first checkpoint that covered the changed entry (index i) and every later one object.
            assert.ok(check.problems.length >= 1, `${how} of entry ${i + 1} went unnoticed`);
            assert.ok(
              check.problems.every((p) => /^(rewritten|truncated)/.test(p)),
              check.problems.join('; '),
            );
            assert.ok(check.problems.length <= seen.length - i, `${how}: sizes up to ${i} still hold`);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('GetAuditConsistency answers no size beyond the log: a cut tail cannot be asked away', async () => {
    const stateDir = await tempDir();
    const { log } = await openLog(stateDir);
    await log.append('a.entry', { n: 1 });
    await log.append('a.entry', { n: 2 });
    assert.throws(() => log.consistency([3]), RangeError);
    assert.deepEqual(log.consistency([2, 0]).proofs, [[], []]);
    assert.equal(log.consistency([1]).proofs[0]?.length, 1);
  });

  it("the checkpoint's root, kept up to date on every append, is RFC 6962's hash of the entries at every size", async () => {
    const stateDir = await tempDir();
    const { log, key } = await openLog(stateDir);
    for (let n = 1; n <= 70; n++) {
      await log.append('a.entry', { n });
      const text = openNote(log.checkpoint(), auditVerifier(DEVICE, verifyKeyOf(key)));
      const cp = parseCheckpoint(text);
      assert.equal(cp.size, n);
      assert.ok(cp.root.equals(rootOf((await linesOf(stateDir)).map(auditLeaf))), `root at ${n}`);
    }
    // Reopened, the frontier is rebuilt from the file: the same root.
    const again = await openLog(stateDir, key);
    assert.equal(again.log.checkpoint().split('\n')[2], log.checkpoint().split('\n')[2]);
  });

  it('a torn last line is cut off; a damaged file is set aside and the new log says so', async () => {
    const stateDir = await tempDir();
    const key = generateSigningKey();
    let { log } = await openLog(stateDir, key);
    await log.append('a.one', {});
    await log.append('a.two', {});
    await writeFile(logPath(stateDir), `${await readFile(logPath(stateDir), 'utf8')}{"seq":3,"at`);
    ({ log } = await openLog(stateDir, key));
    assert.equal(log.size, 2);
    await log.append('a.three', {});
    assert.deepEqual(
      (await linesOf(stateDir)).map((l) => parseAuditLine(l).event),
      ['a.one', 'a.two', 'a.three'],
    );

    const lines = await linesOf(stateDir);
    lines[1] = 'not json';
    await writeFile(logPath(stateDir), `${lines.join('\n')}\n`);
    ({ log } = await openLog(stateDir, key));
    const fresh = (await linesOf(stateDir)).map((l) => parseAuditLine(l));
    assert.equal(fresh[0]?.event, 'audit.reset');
    assert.match(String(fresh[0]?.data.reason), /line 2/);
  });

  it('entries are clipped to their caps and serialise as the parser reads them', () => {
    fc.assert(
      fc.property(entryArb, fc.nat({ max: 1000 }), (e, seq) => {
        const line = formatAuditLine(seq + 1, 5, e.event, e.data);
        const parsed = parseAuditLine(line, seq + 1);
        assert.equal(parsed.event, e.event);
      }),
    );
  });
});
