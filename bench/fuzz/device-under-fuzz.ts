import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { type CommandPath, openCommandPath } from '../../firmware/command-path.js';
import { identityPath } from '../../firmware/root.js';
import { DoorbellService } from '../../firmware/services/doorbell-service.js';
import { type EventBody, EventSigner } from '../../firmware/services/event-signer.js';
import { Outbox } from '../../firmware/services/outbox.js';
import { loadOrCreatePairingSecret } from '../../firmware/trust/pairing-secret.js';
import { createHal, type Hal, parseHalConfig } from '../../hal/index.js';
import {
  CounterStore,
  doorbell,
  loadOrCreateSigningKey,
  type SigningKey,
  topicsFor,
  type VerifyKey,
} from '../../proto/index.js';
import { Role } from '../../proto/roles.js';

export const FUZZ_DEVICE = 'front-door';
export const FUZZ_TOPICS = topicsFor(FUZZ_DEVICE);
export const OUTBOX_MAX = 1_000;

/** The clocks the device reads; the fuzzer moves them. `local` may be set back, `mono` never. */
export interface FuzzClocks {
  local: number;
  mono: number;
}

/** An answer or event the device signed, decoded, and whether it was queued durably. */
export interface SignedOut {
  event: doorbell.v1.Event;
  durable: boolean;
}

/**
 * One doorbell as the daemon composes it, minus the network: the command
 * path of firmware/command-path.ts over a state directory, the sim hardware
 * (button, chime), the doorbell service (press -> chime), the event signer
 * and the durable outbox. What the device sends is decoded into `out`, with
 * whether it went through the durable outbox or the volatile path. A restart
 * is a new instance on the same directory; `clean` decides whether the
 * stores are closed first (a clean stop) or abandoned (a crash).
 */
export class DeviceUnderFuzz {
  private constructor(
    readonly stateDir: string,
    readonly deviceKey: SigningKey,
    readonly secret: Uint8Array,
    readonly path: CommandPath,
    readonly hal: Hal,
    /** Everything the device signed since this start, in order. */
    readonly out: SignedOut[],
    private readonly outbox: Outbox,
    private readonly doorbellService: DoorbellService,
    private readonly counters: CounterStore,
    private readonly listeners: Set<(o: SignedOut) => void>,
  ) {}

  static async open(
    stateDir: string,
    clocks: FuzzClocks,
    logger: Logger,
    configured: VerifyKey[] = [],
  ): Promise<DeviceUnderFuzz> {
    const nowMs = () => clocks.local;
    const { key } = await loadOrCreateSigningKey(identityPath(stateDir));
    const secret = await loadOrCreatePairingSecret(stateDir);
    const counters = await CounterStore.open(join(stateDir, 'event-counter'));
    const signer = new EventSigner({
      deviceId: FUZZ_DEVICE,
      key,
      counters,
      nowMs,
      ttlMs: 60_000,
      keyEpoch: () => path.trust.epoch,
    });
    const hal = await createHal(
      parseHalConfig({
        backend: 'sim',
        button: { minPressMs: 5, lockoutMs: 0 },
        chime: { mode: 'mechanical', pulseMs: 10, minGapMs: 0 },
      }),
      { logger },
    );
    const outbox = Outbox.open(join(stateDir, 'outbox'), { max: OUTBOX_MAX, logger });
    const out: SignedOut[] = [];
    const listeners = new Set<(o: SignedOut) => void>();
    const record = (payload: Uint8Array, durable: boolean): void => {
      const body = doorbell.v1.Envelope.decode(payload).body;
      const signed = { event: doorbell.v1.Event.decode(body), durable };
      out.push(signed);
      for (const l of listeners) l(signed);
    };
    const emit = (body: EventBody, correlationId?: string): void => {
      const payload = signer.seal(FUZZ_TOPICS.evt, body, correlationId);
      outbox.push({ topic: FUZZ_TOPICS.evt, payload, retain: false });
      record(payload, true);
    };
    const path = await openCommandPath({
      stateDir,
      deviceId: FUZZ_DEVICE,
      deviceKey: key,
      configuredKeys: configured.map((k) => ({ key: k, role: Role.OPERATE })),
      chime: hal.chime,
      logger,
      nowMs,
      monoMs: () => clocks.mono,
      pairingWindowMs: 180_000,
      errorRepliesPerS: 10,
      emit,
      notify: (body, correlationId) => record(signer.seal(FUZZ_TOPICS.evt, body, correlationId), false),
      status: () => ({ state: doorbell.v1.Status.State.ONLINE, paired: path.trust.isPaired }),
    });
    const doorbellService = new DoorbellService({
      button: hal.button,
      chime: hal.chime,
      led: hal.led,
      emit,
      nowMs,
      logger,
      isMuted: () => path.settings.chimeMuted,
      onHold: () => path.onHold(),
    });
    doorbellService.start();
    return new DeviceUnderFuzz(
      stateDir,
      key,
      secret,
      path,
      hal,
      out,
      outbox,
      doorbellService,
      counters,
      listeners,
    );
  }

  /** Hands the bytes to the command service as the MQTT client would; never rejects by contract. */
  handle(bytes: Uint8Array): Promise<void> {
    return this.path.commands.handle(FUZZ_TOPICS.cmd, bytes, false);
  }

  /** The broker acknowledged everything queued: the outbox empties, as after a delivery. */
  deliverAll(): void {
    for (let head = this.outbox.head(); head; head = this.outbox.head()) this.outbox.ack(head);
  }

  get outboxDepth(): number {
    return this.outbox.depth;
  }

  /**
   * Presses the sim button once the chime is idle and resolves, once the
   * button has recognised the release (so the next press is a new one, not a
   * bounce of this one) and the press's ChimeRang event is signed, with
   * whether the chime line went on.
   */
  async press(): Promise<{ rang: boolean; event: doorbell.v1.IChimeRang }> {
    const sim = this.hal.sim;
    if (!sim) throw new Error('the fuzzed device has no sim wires');
    await sim.chimeOff();
    const before = sim.chimeHistory().filter((c) => c.on).length;
    const chimeRang = new Promise<doorbell.v1.IChimeRang>((resolve) => {
      const listener = (o: SignedOut): void => {
        if (!o.event.chimeRang) return;
        this.listeners.delete(listener);
        resolve(o.event.chimeRang);
      };
      this.listeners.add(listener);
    });
    const released = new Promise<void>((resolve) => {
      const off = this.hal.button.subscribe((e) => {
        if (e.type !== 'release') return;
        off();
        resolve();
      });
    });
    await sim.press(20);
    const [event] = await Promise.all([chimeRang, released]);
    const rang = sim.chimeHistory().filter((c) => c.on).length > before;
    return { rang, event };
  }

  /** Stops: cleanly (exact replay marks, outbox synced) or as a crash (the stores are abandoned). */
  async close(clean: boolean): Promise<void> {
    this.doorbellService.stop();
    if (clean) {
      this.path.close();
      await this.counters.flush();
    }
    // Closing the outbox file is the same after a crash: its appends are already in the page cache.
    this.outbox.close();
    await this.hal.close();
  }
}
