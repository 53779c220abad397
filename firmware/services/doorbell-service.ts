import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { Button, ButtonEvent, Chime, StatusLed } from '../../hal/index.js';
import { AfterPressQueue } from './after-press.js';
import type { EventBody } from './event-signer.js';

export interface DoorbellServiceDeps {
  button: Button;
  chime: Chime;
  led: StatusLed;
  /** Queues a signed event; never blocks and never touches the network itself. */
  emit: (body: EventBody) => void;
  nowMs: () => number;
  /** Timers of the after-press work; default the system clock. */
  clock?: Clock;
  logger: Logger;
  /** While true, a press is an event but does not drive the chime (a Manage setting). */
  isMuted?: () => boolean;
  /** The button was held for the pairing time. */
  onHold?: () => void;
  /** After the chime, before the press event: starts a clip; may name a snapshot. Must not throw or block. */
  onPress?: (atMs: number) => { snapshotId?: string };
}

/**
 * The doorbell's one job: a recognised press rings the chime at once, in the
 * button's own callback, before anything else happens; only then are the
 * events signed and queued. Nothing here waits for the network.
 */
export class DoorbellService {
  private unsubscribe: (() => void) | undefined;
  private presses = 0;
  private readonly afterPress: AfterPressQueue;

  constructor(private readonly deps: DoorbellServiceDeps) {
    this.afterPress = new AfterPressQueue(deps.clock);
  }

  start(): void {
    this.unsubscribe = this.deps.button.subscribe((event) => this.onButton(event));
  }

  /**
   * Unsubscribes from the button and runs waiting after-press work at once,
   * so a press just before a shutdown still has its ChimeRang event queued
   * while the outbox is open.
   */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.afterPress.flush();
  }

  get pressesSinceBoot(): number {
    return this.presses;
  }

  private onButton(event: ButtonEvent): void {
    switch (event.type) {
      case 'press':
        this.onPress(event.recognisedAtNs);
        return;
      case 'hold':
        this.deps.logger.info({ heldMs: event.heldMs }, 'button held: pairing requested');
        this.deps.emit({ pairingRequested: {} });
        this.deps.onHold?.();
        return;
      case 'release':
        return;
      default: {
        const unreachable: never = event;
        throw new Error(`unhandled button event ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private onPress(recognisedAtNs: bigint): void {
    const { chime, logger } = this.deps;
    let rang = false;
    let skippedReason = '';
    try {
      if (this.deps.isMuted?.() === true) {
        skippedReason = 'muted';
      } else {
        const result = chime.ring();
        rang = result.started;
        skippedReason = result.reason ?? '';
      }
    } catch (err) {
      skippedReason = `hardware: ${(err as Error).message}`;
      logger.error({ err }, 'chime failed');
    }
    const chimeNs = process.hrtime.bigint();
    const nowMs = this.deps.nowMs();
    this.presses += 1;
    const press = this.presses;
    const pressToChimeUs = Number((chimeNs - recognisedAtNs) / 1000n);
    let snapshotId: string | undefined;
    try {
      snapshotId = this.deps.onPress?.(nowMs).snapshotId;
    } catch (err) {
      logger.error({ err }, 'press hook failed');
    }
    this.deps.emit({
      buttonPressed: { pressedAtMs: nowMs, pressSeq: press, ...(snapshotId ? { snapshotId } : {}) },
    });
    // Secondary work waits until the press event's bytes have left and reached the hub.
    this.afterPress.add(() => {
      this.deps.emit({
        chimeRang: { rangAtMs: nowMs, mode: chime.mode, pressToChimeUs, rang, skippedReason },
      });
      this.flashLed();
      logger.info({ press, rang, skippedReason, pressToChimeUs }, 'button pressed');
    });
  }

  private flashLed(): void {
    try {
      this.deps.led.set('blink-fast');
    } catch (err) {
      this.deps.logger.warn({ err }, 'status LED failed');
    }
  }
}
