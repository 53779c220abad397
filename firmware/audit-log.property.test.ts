import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { AuditLog, GENESIS_HASH, lineHash, parseAuditLine, verifyAuditLog } from './audit-log.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'audit-log-'));
  dirs.push(d);
  return d;
}

const field = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean());
const entryArb = fc.record({
  event: fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/),
  data: fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,10}$/), field, { maxKeys: 4 }),
});

/** Builds a valid chain in memory, as the writer does. */
function chain(entries: { event: string; data: Record<string, string | number | boolean> }[]): string[] {
  let prev = GENESIS_HASH;
  return entries.map((e, i) => {
    const line = JSON.stringify({ seq: i + 1, atMs: 1_000 + i, prev, event: e.event, data: e.data });
    prev = lineHash(line);
    return line;
  });
}

describe('audit log', () => {
  it('the parser never throws anything but Error, and the verifier never throws, on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        try {
          parseAuditLine(text);
        } catch (err) {
          assert.ok(err instanceof Error);
        }
        const v = verifyAuditLog(text);
        assert.equal(typeof v.ok, 'boolean');
      }),
      { numRuns: 500 },
    );
  });

  it('a valid chain verifies; any modified, removed or swapped line is detected', () => {
    fc.assert(
      fc.property(
        fc.array(entryArb, { minLength: 2, maxLength: 12 }),
        fc.nat(),
        fc.constantFrom('modify', 'remove', 'swap'),
        (entries, pick, how) => {
          const lines = chain(entries);
          assert.equal(verifyAuditLog(`${lines.join('\n')}\n`).ok, true);
          const i = pick % (lines.length - 1); // not the last line: the chain cannot show a cut tail
          const changed = [...lines];
          if (how === 'modify')
            changed[i] = (changed[i] ?? '').replace(/"atMs":(\d+)/, (_, n) => `"atMs":${Number(n) + 1}`);
          else if (how === 'remove') changed.splice(i, 1);
          else [changed[i], changed[i + 1]] = [changed[i + 1] ?? '', changed[i] ?? ''];
          const v = verifyAuditLog(`${changed.join('\n')}\n`);
          assert.equal(v.ok, false, `${how} of line ${i + 1} went unnoticed`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the writer continues the chain across reopening and rotation, and moves a damaged file aside', async () => {
    const dir = await tempDir();
    const path = join(dir, 'audit.log');
    let log = await AuditLog.open(path, { maxBytes: 600 });
    for (let i = 0; i < 5; i++) await log.append('ota.begun', { n: i, detail: 'x'.repeat(40) });
    log = await AuditLog.open(path, { maxBytes: 600 });
    for (let i = 5; i < 10; i++) await log.append('ota.chunk', { n: i });
    const older = await readFile(`${path}.1`, 'utf8');
    const newer = await readFile(path, 'utf8');
    const joined = verifyAuditLog(older + newer, { continued: true });
    assert.equal(joined.ok, true, JSON.stringify(joined.problem));
    assert.equal(joined.lastSeq, 10);
    assert.ok(Buffer.byteLength(newer) <= 600);

    const lines = newer.split('\n');
    lines[0] = (lines[0] ?? '').replace(/"atMs":(\d+)/, (_, n) => `"atMs":${Number(n) + 1}`);
    await writeFile(path, lines.join('\n'));
    const reopened = await AuditLog.open(path);
    await reopened.append('ota.after', {});
    const fresh = verifyAuditLog(await readFile(path, 'utf8'));
    assert.equal(fresh.ok, true);
    assert.equal(fresh.entries[0]?.event, 'audit.reset');
  });
});
