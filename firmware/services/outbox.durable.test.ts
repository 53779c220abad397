import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../common/clock.js';
import { silentLogger } from '../../common/logger.js';
import { GROUP_COMMIT_DELAY_MS, Outbox, type OutboxEntry, type OutboxOptions } from './outbox.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'outbox-test-'));
  dirs.push(d);
  return d;
}

const entry = (n: number): OutboxEntry => ({
  topic: `doorbell/v1/front-door/evt`,
  payload: Buffer.from(`event-${n}`),
  retain: n % 3 === 0,
});
/** The whole queue on disk: reopen, close the file, then ack everything in memory only. */
function contents(dir: string, max = 1000): string[] {
  const box = Outbox.open(dir, { max, logger: silentLogger() });
  const out: string[] = [];
  box.close(); // acks below stay in memory
  for (let e = box.head(); e; e = box.head()) {
    out.push(`${Buffer.from(e.payload).toString()}${e.retain ? '+r' : ''}`);
    box.ack(e);
  }
  return out;
}

interface Line {
  level: string;
  msg: string;
  obj: Record<string, unknown>;
}
function recordingLogger(): { logger: ReturnType<typeof silentLogger>; lines: Line[] } {
  const lines: Line[] = [];
  const make = (): ReturnType<typeof silentLogger> => {
    const log =
      (level: string) =>
      (a: unknown, b?: unknown): void => {
        if (typeof a === 'string') lines.push({ level, msg: a, obj: {} });
        else lines.push({ level, msg: String(b), obj: a as Record<string, unknown> });
      };
    return {
      ...silentLogger(),
      trace: log('trace'),
      debug: log('debug'),
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      fatal: log('fatal'),
      child: () => make(),
    } as unknown as ReturnType<typeof silentLogger>;
  };
  return { logger: make(), lines };
}

test('append, ack and reopen keep the order and forget acknowledged entries', () => {
  const dir = tempDir();
  const box = Outbox.open(dir, { max: 100, logger: silentLogger() });
  for (let i = 1; i <= 5; i++) box.push(entry(i));
  const first = box.head();
  assert.ok(first);
  box.ack(first);
  const second = box.head();
  assert.ok(second);
  box.ack(second);
  box.close();
  assert.deepEqual(contents(dir), ['event-3+r', 'event-4', 'event-5']);
  // and pushes after a reopen go behind what was there
  const again = Outbox.open(dir, { max: 100, logger: silentLogger() });
  assert.equal(again.depth, 3);
  again.push(entry(6));
  again.close();
  assert.deepEqual(contents(dir), ['event-3+r', 'event-4', 'event-5', 'event-6+r']);
});

test('a torn final record is dropped and every earlier record survives', () => {
  const dir = tempDir();
  const box = Outbox.open(dir, { max: 100, logger: silentLogger() });
  for (let i = 1; i <= 4; i++) box.push(entry(i));
  box.close();
  const file = join(dir, 'outbox.log');
  const { logger, lines } = recordingLogger();
  for (const cut of [1, 3, 9]) {
    const size = readFileSync(file).length;
    truncateSync(file, size - cut);
    const reopened = Outbox.open(dir, { max: 100, logger });
    reopened.close();
  }
  // each cut took off (part of) the last record: three of the four entries went
  assert.deepEqual(contents(dir), ['event-1']);
  assert.ok(lines.some((l) => l.level === 'warn' && l.msg.includes('torn')));
  assert.ok(!readdirSync(dir).some((f) => f.includes('corrupt')), 'a torn tail is not corruption');
});

test('a file of random garbage opens empty, is moved aside and says so', () => {
  const dir = tempDir();
  const garbage = Buffer.alloc(5000);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
  writeFileSync(join(dir, 'outbox.log'), garbage);
  const { logger, lines } = recordingLogger();
  const box = Outbox.open(dir, { max: 100, logger });
  assert.equal(box.depth, 0);
  box.push(entry(1));
  box.close();
  const aside = readdirSync(dir).filter((f) => f.startsWith('outbox.log.corrupt-'));
  assert.equal(aside.length, 1);
  assert.deepEqual(
    readFileSync(join(dir, aside[0] as string)),
    garbage,
    'the bad file is kept for inspection',
  );
  const line = lines.find((l) => l.level === 'error');
  assert.ok(line, 'an error line');
  assert.match(line.msg, /corrupt.*moved it aside.*empty/);
  assert.deepEqual(contents(dir), ['event-1']);
});

test('corruption in the middle keeps the entries before it and moves the file aside', () => {
  const dir = tempDir();
  const box = Outbox.open(dir, { max: 100, logger: silentLogger() });
  for (let i = 1; i <= 3; i++) box.push(entry(i));
  box.close();
  const file = join(dir, 'outbox.log');
  const data = readFileSync(file);
  const at = data.indexOf('event-2');
  data[at] = 0x45; // flip a payload byte of the second record
  writeFileSync(file, data);
  assert.deepEqual(contents(dir), ['event-1']);
  assert.equal(readdirSync(dir).filter((f) => f.includes('corrupt')).length, 1);
});

test('at the bound the oldest are dropped and one report is queued when delivery resumes, surviving a restart', () => {
  const dir = tempDir();
  const reports: Array<{ count: number; oldestDroppedCounter: number }> = [];
  const options: OutboxOptions = {
    dropReport: (d) => {
      reports.push(d);
      return {
        topic: 't',
        payload: Buffer.from(`dropped-${d.count}-from-${d.oldestDroppedCounter}`),
        retain: false,
      };
    },
    counterOf: (e) => Number(Buffer.from(e.payload).toString().split('-')[1]),
  };
  const box = Outbox.open(dir, { max: 3, logger: silentLogger(), ...options });
  for (let i = 1; i <= 7; i++) box.push(entry(i));
  assert.equal(box.depth, 3);
  assert.equal(box.dropped, 4);
  assert.equal(reports.length, 0, 'no report while nothing is delivered');
  box.close();

  const reopened = Outbox.open(dir, { max: 3, logger: silentLogger(), ...options });
  const head = reopened.head();
  assert.ok(head);
  reopened.ack(head);
  assert.deepEqual(reports, [{ count: 4, oldestDroppedCounter: 1 }]);
  for (let e = reopened.head(); e; e = reopened.head()) reopened.ack(e);
  assert.equal(reports.length, 1, 'exactly one report');
  reopened.close();
  assert.deepEqual(contents(dir, 3), []);
  Outbox.open(dir, { max: 3, logger: silentLogger(), ...options }).close();
  assert.equal(reports.length, 1, 'a report is not repeated after a restart');
});

test('property: any sequence of push, ack and reopen keeps the queue equal to a model array', () => {
  type Op = { op: 'push' } | { op: 'ack' } | { op: 'reopen' } | { op: 'ackWrong' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.constant<Op>({ op: 'push' }) },
    { weight: 3, arbitrary: fc.constant<Op>({ op: 'ack' }) },
    { weight: 1, arbitrary: fc.constant<Op>({ op: 'reopen' }) },
    { weight: 1, arbitrary: fc.constant<Op>({ op: 'ackWrong' }) },
  );
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), fc.integer({ min: 1, max: 6 }), (ops, max) => {
      const dir = tempDir();
      const options: OutboxOptions = {
        dropReport: (d) => ({
          topic: 't',
          payload: Buffer.from(`report-${d.count}-${d.oldestDroppedCounter}`),
          retain: false,
        }),
        counterOf: (e) => Number(Buffer.from(e.payload).toString().split('-')[1]) || 0,
      };
      const open = () => Outbox.open(dir, { max, logger: silentLogger(), ...options });
      let box = open();
      const model: string[] = [];
      let pending = { count: 0, oldest: 0 };
      let n = 0;
      for (const { op } of ops) {
        if (op === 'push') {
          n += 1;
          if (model.length >= max) {
            const gone = model.shift() as string;
            if (pending.count === 0) pending.oldest = Number(gone.split('-')[1]) || 0;
            pending.count += 1;
          }
          model.push(`event-${n}`);
          box.push({ topic: 't', payload: Buffer.from(`event-${n}`), retain: false });
        } else if (op === 'ack') {
          const head = box.head();
          if (head) {
            box.ack(head);
            model.shift();
            if (pending.count > 0) {
              model.push(`report-${pending.count}-${pending.oldest}`);
              pending = { count: 0, oldest: 0 };
            }
          }
        } else if (op === 'ackWrong') {
          box.ack({ topic: 't', payload: Buffer.from('not-queued'), retain: false });
        } else {
          box.close();
          box = open();
        }
        assert.equal(box.depth, model.length);
      }
      box.close();
      const got: string[] = [];
      box = Outbox.open(dir, { max, logger: silentLogger() }); // no report builder: reading must not add one
      box.close();
      for (let e = box.head(); e; e = box.head()) {
        got.push(Buffer.from(e.payload).toString());
        box.ack(e);
      }
      assert.deepEqual(got, model);
    }),
    { numRuns: 150 },
  );
});

test('group commit: a push is in the file when push returns; one background fdatasync, a few ms later, covers the pushes before it', async () => {
  const { OutboxFile } = await import('./outbox/outbox-file.js');
  const dir = tempDir();
  const clock = new FakeClock();
  const box = Outbox.open(dir, { max: 100, logger: silentLogger(), clock });
  const proto = OutboxFile.prototype;
  const original = { background: proto.syncInBackground, blocking: proto.sync };
  let background = 0;
  let blocking = 0;
  let lastSync: Promise<void> = Promise.resolve();
  proto.syncInBackground = function (this: typeof proto) {
    background += 1;
    lastSync = original.background.call(this);
    return lastSync;
  };
  proto.sync = function (this: typeof proto) {
    blocking += 1;
    original.blocking.call(this);
  };
  try {
    const before = readFileSync(join(dir, 'outbox.log')).length;
    box.push(entry(1));
    box.push(entry(2));
    box.push(entry(3));
    assert.ok(readFileSync(join(dir, 'outbox.log')).length > before, 'written before push returned');
    assert.equal(background + blocking, 0, 'no sync inside the turn that published');
    await new Promise((r) => setImmediate(r));
    clock.advance(GROUP_COMMIT_DELAY_MS - 0.1);
    assert.equal(background, 0, 'not before the delay: the events are still in flight');
    box.push(entry(4));
    clock.advance(0.1);
    assert.equal(background, 1, 'one background sync for the four pushes, at the delay');
    await lastSync;
    await new Promise((r) => setImmediate(r)); // its completion handler has run
    clock.advance(GROUP_COMMIT_DELAY_MS * 10);
    assert.equal(background, 1, 'and no second one');
    assert.equal(clock.pendingTimers(), 0);
    box.push(entry(5));
    box.close();
    assert.equal(blocking, 1, 'close syncs what is pending, blocking');
    assert.deepEqual(contents(dir), ['event-1', 'event-2', 'event-3+r', 'event-4', 'event-5']);
  } finally {
    proto.syncInBackground = original.background;
    proto.sync = original.blocking;
  }
});
