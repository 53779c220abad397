/**
 * The attacks of the outside review, replayed against the real daemon
 * (`doorbell run`, a child process) on a real Mosquitto. The attacker is a
 * plain mqtt.js client publishing envelopes it signs itself; results are
 * verified at a hub against the device's key.
 */
import assert from 'node:assert/strict';
import { randomBytes, sign } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { silentLogger } from '../common/logger.js';
import {
  doorbell,
  fingerprintOf,
  generateSigningKey,
  loadOrCreateSigningKey,
  newCorrelationId,
  publicKeyToText,
  type SigningKey,
  sealPairCommand,
  topicsFor,
  verifyKeyOf,
} from '../proto/index.js';
import { type DaemonProcess, startDaemonProcess } from '../test-support/daemon-process.js';
import { type HubObserver, observeDevices } from '../test-support/hub-observer.js';
import { identityPath } from './root.js';
import { loadOrCreatePairingSecret } from './trust/pairing-secret.js';
import { TrustStore } from './trust/trust-store.js';

const { ErrorKind, Role } = doorbell.v1;
const DEVICE = 'front-door';
const TOPICS = topicsFor(DEVICE);

let root: string;
let broker: RunningBroker;
let attacker: MqttClient;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'doorbell-attacks-'));
  broker = await startMosquitto();
  attacker = await connectAsync(broker.url, { protocolVersion: 5, clientId: `attacker-${process.pid}` });
});
after(async () => {
  await attacker?.endAsync();
  await broker?.stop();
  await rm(root, { recursive: true, force: true });
});

interface SendOptions {
  counter?: number;
  issuedAtMs?: number;
  lifetimeMs?: number;
  keyEpoch?: number;
}

/** One doorbell under attack: its state directory, the real daemon, a verifying hub. */
class Target {
  daemon: DaemonProcess | undefined;
  hub: HubObserver | undefined;
  deviceKey: SigningKey | undefined;
  private readonly counters = new Map<string, number>();

  constructor(
    readonly name: string,
    private readonly config: { hubKeys: SigningKey[]; hubRole?: string },
  ) {}

  get stateDir(): string {
    return join(root, this.name, 'state');
  }
  get configPath(): string {
    return join(root, this.name, 'config.json');
  }
  get socket(): string {
    return join(root, this.name, 'wires.sock');
  }

  /** Creates the identity (as `doorbell identity` does) so keys can be pinned before the first start. */
  async prepare(): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    this.deviceKey = (await loadOrCreateSigningKey(identityPath(this.stateDir))).key;
    await writeFile(
      this.configPath,
      JSON.stringify({
        deviceId: DEVICE,
        stateDir: this.stateDir,
        broker: { url: broker.url, reconnect: { minMs: 100, maxMs: 400 } },
        trust: {
          hubKeys: this.config.hubKeys.map((k) => publicKeyToText(k)),
          hubRole: this.config.hubRole ?? 'operate',
        },
        // No lockout after a release: the next hold can begin as soon as the window closed.
        hal: { backend: 'sim', sim: { socket: this.socket }, button: { holdMs: 1000, lockoutMs: 0 } },
        log: { level: 'debug' },
      }),
    );
  }

  async start(): Promise<void> {
    assert.ok(this.deviceKey, 'prepare() first');
    this.hub ??= observeDevices(broker.url, new Map([[DEVICE, verifyKeyOf(this.deviceKey)]]), silentLogger());
    const onlineBefore = this.onlineCount();
    this.daemon = await startDaemonProcess(this.configPath, this.socket);
    await this.hub.log.waitFor(
      (e) => e.event.status?.state === doorbell.v1.Status.State.ONLINE && this.onlineCount() > onlineBefore,
      20_000,
      'the doorbell online',
    );
  }

  async restart(): Promise<void> {
    const code = await this.daemon?.stop();
    assert.equal(code, 0, `a clean stop exits 0\n${this.daemon?.stderr().slice(-2000)}`);
    await this.start();
  }

  async stop(): Promise<void> {
    await this.daemon?.stop();
    if (process.env.DOORBELL_TEST_LOG)
      await writeFile(join(tmpdir(), `attacks-${this.name}.log`), this.daemon?.stderr() ?? '');
    await this.hub?.stop();
  }

  private onlineCount(): number {
    return (this.hub?.log.events ?? []).filter(
      (e) => e.event.status?.state === doorbell.v1.Status.State.ONLINE && !e.retained,
    ).length;
  }

  /** Signs and publishes a command; returns its correlation id. */
  async send(key: SigningKey, body: doorbell.v1.ICommand, o: SendOptions = {}): Promise<string> {
    const counter = o.counter ?? (this.counters.get(key.keyId) ?? 0) + 1;
    this.counters.set(key.keyId, Math.max(counter, this.counters.get(key.keyId) ?? 0));
    const issuedAtMs = o.issuedAtMs ?? Date.now();
    const correlationId = newCorrelationId();
    const header = {
      deviceId: DEVICE,
      topic: TOPICS.cmd,
      counter,
      issuedAtMs,
      expiresAtMs: issuedAtMs + (o.lifetimeMs ?? 9_000),
      correlationId,
      keyEpoch: o.keyEpoch ?? 0,
    };
    // Encoded and signed by hand: sealCommand would refuse what an attacker sends.
    const encoded = doorbell.v1.Command.encode({ ...body, header }).finish();
    await publish(Buffer.from(signRaw(encoded, key)), `${Object.keys(body)[0]} #${counter}`);
    return correlationId;
  }

  /** Sends and waits for the signed result. */
  async command(
    key: SigningKey,
    body: doorbell.v1.ICommand,
    o: SendOptions = {},
  ): Promise<doorbell.v1.ICommandResult> {
    const cid = await this.send(key, body, o);
    const result = await this.log.result(cid);
    return result.event.commandResult ?? {};
  }

  get log() {
    assert.ok(this.hub, 'start() first');
    return this.hub.log;
  }

  /** Signs a Pair whose proof covers its own header (the transcript binds it). */
  async sendPair(
    owner: SigningKey,
    secret: Uint8Array,
    pair: Partial<doorbell.v1.IPair> = {},
  ): Promise<string> {
    assert.ok(this.deviceKey);
    const issuedAtMs = Date.now();
    const correlationId = newCorrelationId();
    const counter = (this.counters.get(owner.keyId) ?? 0) + 1;
    this.counters.set(owner.keyId, counter);
    const header = {
      deviceId: DEVICE,
      topic: TOPICS.cmd,
      counter,
      issuedAtMs,
      expiresAtMs: issuedAtMs + 9_000,
      correlationId,
      keyEpoch: 0,
    };
    const { payload: bytes } = sealPairCommand({
      header,
      pair: { ownerLabel: 'someone', footageRecipients: [], ...pair },
      owner,
      secret,
      fingerprint: fingerprintOf(verifyKeyOf(this.deviceKey).publicRaw),
    });
    await publish(Buffer.from(bytes), `Pair #${counter}`);
    return correlationId;
  }

  async openWindowByHold(): Promise<void> {
    assert.ok(this.daemon);
    const opened = this.log.events.filter((e) => e.event.pairingWindow?.open === true).length;
    // Held 150 ms past holdMs (the hold timer and the release run in the daemon's one event
    // loop, in that order, however loaded the machine), then released for 100 ms by the sim,
    // as a finger lifts: a release shorter than minPressMs (30 ms) is contact bounce to the
    // debouncer, and a hold right after it (20 failed Pairs can take 20 ms) no new press.
    await this.daemon.wires.press(1150, 100);
    await this.log.waitFor(
      () => this.log.events.filter((e) => e.event.pairingWindow?.open === true).length > opened,
      10_000,
      'the pairing window open',
    );
  }

  async enrolment(): Promise<{ role: string; publicKey: string }[]> {
    const text = await readFile(join(this.stateDir, 'enrolment.json'), 'utf8');
    return (JSON.parse(text) as { keys: { role: string; publicKey: string }[] }).keys;
  }
}

/**
 * Publishes on the command topic at QoS 1 and waits for the broker's PUBACK,
 * which mqtt.js alone would await forever: a lost acknowledgement fails here,
 * naming the message, instead of timing out the whole file.
 */
async function publish(payload: Buffer, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      attacker.publishAsync(TOPICS.cmd, payload, { qos: 1 }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no PUBACK within 10 s for ${what}`)), 10_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** An envelope around `body`, signed with `key`, built without any of sealing's checks. */
function signRaw(body: Uint8Array, key: SigningKey): Uint8Array {
  return doorbell.v1.Envelope.encode({
    body,
    signature: sign(null, body, key.privateKey),
    keyId: key.keyId,
  }).finish();
}

const kind = (r: doorbell.v1.ICommandResult): string =>
  r.ok ? 'OK' : (ErrorKind[r.errorKind ?? 0] ?? String(r.errorKind));

/** Enrols `owner` (Administer) and `view` (View) in a fresh state directory, as pairing and addKey would. */
async function enrol(stateDir: string, owner: SigningKey, ...views: SigningKey[]): Promise<void> {
  const store = await TrustStore.open(stateDir, [], { logger: silentLogger() });
  await store.pair({ owner: verifyKeyOf(owner), ownerLabel: 'owner', recipients: [] });
  for (const view of views) await store.add(verifyKeyOf(view).publicRaw, Role.VIEW, 'phone');
}

describe('a View key cannot stop the doorbell or lock out its owner', () => {
  const owner = generateSigningKey();
  const view = generateSigningKey();
  const clockView = generateSigningKey();
  const hubKey = generateSigningKey();
  const t = new Target('view-key', { hubKeys: [hubKey] });
  before(async () => {
    await t.prepare();
    await enrol(t.stateDir, owner, view, clockView);
    await t.start();
  });
  after(() => t.stop());

  test('a counter of 2^53-1 is refused as UNDECODABLE, a lower one after it is answered, and the daemon lives', async () => {
    const huge = await t.command(view, { getStatus: {} }, { counter: Number.MAX_SAFE_INTEGER });
    assert.equal(kind(huge), 'UNDECODABLE', String(huge.errorMessage));
    const next = await t.command(view, { getStatus: {} }, { counter: 5 });
    assert.equal(kind(next), 'OK', String(next.errorMessage));
    assert.ok(t.daemon?.alive, 'the daemon is still running');
    const replay = JSON.parse(await readFile(join(t.stateDir, 'replay.json'), 'utf8')) as {
      marks: Record<string, number>;
    };
    assert.ok((replay.marks[view.keyId] ?? 0) < 2 ** 48, 'no huge mark was kept');
  });

  test('a mark of 2^53-1 left in replay.json by an older version kills nothing: the key is answered REPLAY', async () => {
    await t.daemon?.stop();
    const path = join(t.stateDir, 'replay.json');
    const state = JSON.parse(await readFile(path, 'utf8')) as { marks: Record<string, number> };
    state.marks[view.keyId] = Number.MAX_SAFE_INTEGER;
    await writeFile(path, JSON.stringify(state));
    await t.start();
    for (let i = 0; i < 3; i++) {
      const r = await t.command(view, { getStatus: {} }, { counter: 100 + i });
      assert.equal(kind(r), 'REPLAY', String(r.errorMessage));
      assert.ok(Number(r.nextCounter) > 2 ** 40, 'the answer names a next counter beyond the spent ones');
    }
    assert.ok(t.daemon?.alive, 'the daemon is still running');
    const own = await t.command(owner, { listKeys: {} });
    assert.equal(kind(own), 'OK', 'the owner is still served');
  });

  test('commands issued ever further ahead do not move trusted time: the owner is served, also after a restart', async () => {
    // Sent back to back: the daemon handles them in order, so each one meets the trusted time the
    // previous one left (error answers are rate-limited, so not every refusal is answered).
    const start = Date.now();
    const sent: string[] = [];
    for (let i = 1; i <= 1_000; i++) {
      sent.push(await t.send(clockView, { getStatus: {} }, { issuedAtMs: start + i * 4_900 }));
    }
    const owned = await t.command(owner, { listKeys: {} });
    assert.equal(kind(owned), 'OK', String(owned.errorMessage));
    const accepted = t.log.events.filter(
      (e) => e.event.commandResult?.ok === true && sent.includes(e.correlationId),
    ).length;
    assert.ok(accepted <= 1, `at most the first (within the 5 s skew) is accepted, not ${accepted}`);
    await t.restart();
    const again = await t.command(owner, { listKeys: {} });
    assert.equal(kind(again), 'OK', `after a restart: ${String(again.errorMessage)}`);
    const stored = JSON.parse(await readFile(join(t.stateDir, 'replay.json'), 'utf8')) as {
      trustedMs: number;
    };
    assert.ok(stored.trustedMs <= Date.now(), 'the persisted trusted time is not ahead of the clock');
  });

  test('a body carrying two command kinds is refused as UNDECODABLE, not run as the last one', async () => {
    const before = t.log.events.filter((e) => e.event.chimeRang).length;
    const issuedAtMs = Date.now();
    const cid = newCorrelationId();
    const header = doorbell.v1.Header.encode({
      deviceId: DEVICE,
      topic: TOPICS.cmd,
      counter: 3_000_000_000_000,
      issuedAtMs,
      expiresAtMs: issuedAtMs + 9000,
      correlationId: cid,
    }).finish();
    // Field 1 header, field 11 getStatus, field 10 ringChimeTest: two members of the oneof.
    const body = Buffer.concat([
      Buffer.from([0x0a, header.length]),
      header,
      Buffer.from([0x5a, 0x00]),
      Buffer.from([0x52, 0x00]),
    ]);
    await attacker.publishAsync(TOPICS.cmd, Buffer.from(signRaw(body, hubKey)), { qos: 1 });
    const r = (await t.log.result(cid)).event.commandResult ?? {};
    assert.equal(kind(r), 'UNDECODABLE', String(r.errorMessage));
    assert.equal(t.log.events.filter((e) => e.event.chimeRang).length, before, 'the chime did not ring');
  });
});

describe('strangers cannot use pairing attempts to change durable state', () => {
  const t = new Target('strangers', { hubKeys: [] });
  let secret: Uint8Array;
  before(async () => {
    await t.prepare();
    secret = await loadOrCreatePairingSecret(t.stateDir);
    await t.start();
  });
  after(() => t.stop());

  test('20 failed Pair attempts leave replay.json as it was and close the window', async () => {
    const path = join(t.stateDir, 'replay.json');
    const before = await readFile(path, 'utf8').catch(() => 'absent');
    await t.openWindowByHold();
    for (let i = 0; i < 20; i++) {
      await t.sendPair(generateSigningKey(), randomBytes(32));
    }
    await t.log.waitFor(
      (e) => e.event.pairingWindow?.reason === 'too-many-failures',
      10_000,
      'the window closed',
    );
    assert.equal(await readFile(path, 'utf8').catch(() => 'absent'), before, 'replay.json is unchanged');
  });

  test('after 13 windows of 20 failures each, the owner still pairs', async () => {
    for (let w = 0; w < 13; w++) {
      const closed = t.log.events.filter((e) => e.event.pairingWindow?.reason === 'too-many-failures').length;
      await t.openWindowByHold();
      for (let i = 0; i < 20; i++) await t.sendPair(generateSigningKey(), randomBytes(32));
      await t.log.waitFor(
        () =>
          t.log.events.filter((e) => e.event.pairingWindow?.reason === 'too-many-failures').length > closed,
        10_000,
        `window ${w} closed`,
      );
    }
    await t.openWindowByHold();
    const owner = generateSigningKey();
    const cid = await t.sendPair(owner, secret);
    const r = (await t.log.result(cid)).event.commandResult ?? {};
    assert.equal(kind(r), 'OK', String(r.errorMessage));
    assert.ok(t.daemon?.alive);
  });
});

describe('pairing enrols exactly one owner per window and never changes a role', () => {
  const t = new Target('race', { hubKeys: [] });
  let secret: Uint8Array;
  let owner: SigningKey | undefined;
  before(async () => {
    await t.prepare();
    secret = await loadOrCreatePairingSecret(t.stateDir);
    await t.start();
  });
  after(() => t.stop());

  test('two pairers racing in one window: one becomes Administer, the other is told the window is closed', async () => {
    await t.openWindowByHold();
    const a = generateSigningKey();
    const b = generateSigningKey();
    const [ca, cb] = await Promise.all([t.sendPair(a, secret), t.sendPair(b, secret)]);
    const ra = (await t.log.result(ca)).event.commandResult ?? {};
    const rb = (await t.log.result(cb)).event.commandResult ?? {};
    assert.deepEqual([kind(ra), kind(rb)].sort(), ['OK', 'PAIRING_WINDOW_CLOSED']);
    const admins = (await t.enrolment()).filter((k) => k.role === 'administer');
    assert.equal(admins.length, 1, 'exactly one owner enrolled');
    owner = ra.ok ? a : b;
    assert.equal(admins[0]?.publicKey, publicKeyToText(owner));
  });

  test('a Pair naming the owner as its hub key with role View is refused; the owner keeps Administer', async () => {
    assert.ok(owner, 'the race test enrolled an owner');
    const opened = await t.command(owner, { openPairingWindow: { seconds: 60 } });
    assert.equal(kind(opened), 'OK', String(opened.errorMessage));
    const epoch = (
      JSON.parse(await readFile(join(t.stateDir, 'enrolment.json'), 'utf8')) as { epoch: number }
    ).epoch;
    const second = generateSigningKey();
    const cid = await t.sendPair(second, secret, {
      hubPublicKey: verifyKeyOf(owner).publicRaw,
      hubRole: Role.VIEW,
      hubLabel: 'demoted',
    });
    const r = (await t.log.result(cid)).event.commandResult ?? {};
    assert.equal(kind(r), 'INVALID_ARGUMENT', String(r.errorMessage));
    const keys = await t.enrolment();
    assert.deepEqual(
      keys.map((k) => [k.publicKey, k.role]),
      [[publicKeyToText(owner), 'administer']],
      'nothing was enrolled or changed',
    );
    const file = JSON.parse(await readFile(join(t.stateDir, 'enrolment.json'), 'utf8')) as { epoch: number };
    assert.equal(file.epoch, epoch);
    const still = await t.command(owner, { listKeys: {} });
    assert.equal(kind(still), 'OK');
  });

  test('a second owner paired in a window the owner opened is reported, with its role, to the existing owner', async () => {
    assert.ok(owner);
    const opened = await t.command(owner, { openPairingWindow: { seconds: 60 } });
    assert.equal(kind(opened), 'OK', String(opened.errorMessage));
    const second = generateSigningKey();
    const hub = generateSigningKey();
    const cid = await t.sendPair(second, secret, {
      hubPublicKey: verifyKeyOf(hub).publicRaw,
      hubRole: Role.OPERATE,
    });
    const r = (await t.log.result(cid)).event.commandResult ?? {};
    assert.equal(kind(r), 'OK', String(r.errorMessage));
    const ownerEvent = await t.log.waitFor(
      (e) => e.event.keysChanged?.change === 'paired' && e.event.keysChanged.keyId === second.keyId,
      5000,
      'the KeysChanged report of the new owner',
    );
    assert.equal(ownerEvent.event.keysChanged?.role, Role.ADMINISTER);
    const hubEvent = await t.log.waitFor(
      (e) => e.event.keysChanged?.change === 'paired' && e.event.keysChanged.keyId === hub.keyId,
      5000,
      'the KeysChanged report of the new hub key',
    );
    assert.equal(hubEvent.event.keysChanged?.role, Role.OPERATE);
  });
});

describe('the state directory', () => {
  const t = new Target('mode', { hubKeys: [] });
  after(() => t.stop());

  test('an existing state directory of mode 0755 is 0700 once the daemon has started', async () => {
    await t.prepare();
    await chmod(t.stateDir, 0o755);
    await t.start();
    assert.equal((await stat(t.stateDir)).mode & 0o777, 0o700);
  });
});
