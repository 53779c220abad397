// Doorbells for the pairing, roles and key-epoch e2e tests: each test gets its own broker,
// daemon, sim wires and hub state, so no test depends on another's.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { promisify } from 'node:util';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import { connectWires, type WireClient } from '../hal/sim/wire-client.js';
import { Commander } from '../hub/commander.js';
import { CounterStore, type SigningKey } from '../proto/index.js';
import { type Harness, startHarness } from './doorbell-harness.js';
import { runCli } from './run-cli.js';

/**
 * For one test file: an age recipient made in `before` and removed in `after`,
 * and the doorbell factory pairing with it (`withDoorbell(age.paired, ...)`).
 */
export function fileAgeRecipient(): {
  readonly recipient: string;
  paired: () => Promise<Doorbell & { stop(): Promise<void> }>;
} {
  let made: { recipient: string; dir: string } | undefined;
  before(async () => {
    made = await ageRecipient();
  });
  after(async () => {
    if (made) await rm(made.dir, { recursive: true, force: true });
  });
  const recipient = (): string => {
    if (!made) throw new Error('the age recipient is made in before()');
    return made.recipient;
  };
  return {
    get recipient() {
      return recipient();
    },
    paired: () => pairedDoorbell(recipient()),
  };
}

/** An age recipient made by the age tools themselves, and the directory holding its identity. */
async function ageRecipient(): Promise<{ recipient: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-trust-age-'));
  await promisify(execFile)('age-keygen', ['-o', join(dir, 'owner-age.txt')]);
  const recipient =
    /public key: (age1[0-9a-z]+)/.exec(await readFile(join(dir, 'owner-age.txt'), 'utf8'))?.[1] ?? '';
  assert.match(recipient, /^age1/);
  return { recipient, dir };
}

/** One doorbell of one test: its own broker, daemon, sim wires and hub state. */
export interface Doorbell {
  broker: RunningBroker;
  h: Harness;
  wires: WireClient;
  hubDir: string;
  /** The doorbell's pairing code, as `doorbell identity` prints it. */
  code: string;
  /** Runs `doorbell-hub` against this broker and this hub state. */
  hub: (...args: string[]) => ReturnType<typeof runCli>;
  /** A Commander signing with `key`, whose results are verified against the device key. */
  commanderFor(key: SigningKey, counterPath?: string): Promise<Commander>;
}

/** A doorbell nobody has paired (no configured hub keys; 1 s pairing hold). */
export async function newDoorbell(): Promise<Doorbell & { stop(): Promise<void> }> {
  const broker = await startMosquitto();
  const hubDir = await mkdtemp(join(tmpdir(), 'doorbell-trust-hub-'));
  const h = await startHarness(broker.url, {
    trust: { hubKeys: [] },
    hal: { backend: 'sim', button: { holdMs: 1000 } },
  });
  const wires = await connectWires(h.device.simSocket ?? '');
  const identity = await runCli('firmware/cli.ts', [
    'identity',
    '--no-qr',
    '--device-id',
    'front-door',
    '--state-dir',
    join(h.dir, 'device'),
  ]);
  assert.equal(identity.code, 0, identity.stderr);
  const code = /pairing code:\s+(\S+)/.exec(identity.stdout)?.[1] ?? '';
  assert.match(code, /^odb1:front-door:[0-9a-f]{64}:/);
  return {
    broker,
    h,
    wires,
    hubDir,
    code,
    hub: (...args) =>
      runCli('hub/cli.ts', [...args, '--broker', broker.url, '--state-dir', hubDir, '--timeout-ms', '8000']),
    async commanderFor(key, counterPath) {
      const path = counterPath ?? join(await mkdtemp(join(hubDir, 'counter-')), 'counter');
      return new Commander({
        connection: h.hub.connection,
        watcher: h.hub.watcher,
        key,
        counters: await CounterStore.open(path),
        logger: silentLogger(),
        keyEpochOf: () => h.device.trust.epoch,
      });
    },
    async stop() {
      await wires.close();
      await h.stop();
      await broker.stop();
      await rm(hubDir, { recursive: true, force: true });
    },
  };
}

/** Holds the button past holdMs and waits for the window to open. */
export async function openWindowByHold(d: Pick<Doorbell, 'h' | 'wires'>): Promise<void> {
  await d.wires.hold(1300);
  await d.h.waitForEvent((e) => e.event.pairingWindow?.open === true, 5000, 'window open');
}

/** A doorbell paired as the README has it: owner alice (Administer), the hub key Operate, one recipient. */
export async function pairedDoorbell(recipient: string): Promise<Doorbell & { stop(): Promise<void> }> {
  const d = await newDoorbell();
  try {
    await openWindowByHold(d);
    const r = await d.hub('pair', '--code', d.code, '--recipient', recipient, '--label', 'alice');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return d;
  } catch (err) {
    await d.stop();
    throw err;
  }
}

/** Runs `body` on a doorbell made by `make`, and stops it whatever happens. */
export function withDoorbell(
  make: () => Promise<Doorbell & { stop(): Promise<void> }>,
  body: (d: Doorbell) => Promise<void>,
): () => Promise<void> {
  return async () => {
    const d = await make();
    try {
      await body(d);
    } finally {
      await d.stop();
    }
  };
}
