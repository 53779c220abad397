import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../common/logger.js';
import { connectWires, type WireClient } from '../../hal/index.js';

export type ConnectWires = (socketPath: string) => Promise<WireClient>;

/**
 * The emulator's cable to the board: a wire-socket client that exists while
 * the board is powered. After power on it retries the connection every
 * `retryMs` until the daemon serves its socket; power off drops it.
 */
export class BoardWires {
  private client: WireClient | undefined;
  private generation = 0;
  private readonly chimeListeners = new Set<(on: boolean, atNs: bigint) => void>();
  private connecting: Promise<void> | undefined;
  /** Called once with each new connection (waitConnected's waiters). */
  private readonly connectWaiters = new Set<() => void>();
  /** The rig's lamp: it lights the board's camera scene whenever the board is up. */
  private lamp = false;

  constructor(
    private readonly socketPath: string,
    private readonly logger: Logger,
    private readonly connect: ConnectWires = (p) => connectWires(p),
    private readonly retryMs = 50,
  ) {}

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** The connected client, or a clear error while the board is off or booting. */
  get wires(): WireClient {
    if (this.client === undefined) throw new Error(`board wire socket ${this.socketPath} is not connected`);
    return this.client;
  }

  onChime(listener: (on: boolean, atNs: bigint) => void): void {
    this.chimeListeners.add(listener);
  }

  /**
   * The rig's lamp in front of the camera: told to the board now when it is
   * connected, and again on every connect (a rebooted board starts dark).
   */
  async setLamp(on: boolean): Promise<void> {
    this.lamp = on;
    await this.client?.light(on);
  }

  /** Starts connecting in the background (board powered). */
  powerOn(): void {
    const generation = ++this.generation;
    this.connecting = this.loop(generation);
  }

  /** Resolves when the board's wire socket is connected (at once if it is), or rejects after `timeoutMs`. */
  waitConnected(timeoutMs: number): Promise<void> {
    if (this.client !== undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.connectWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.connectWaiters.delete(done);
        reject(new Error(`board wire socket ${this.socketPath} not up within ${timeoutMs} ms`));
      }, timeoutMs);
      this.connectWaiters.add(done);
    });
  }

  /** Drops the connection (board unpowered). */
  async powerOff(): Promise<void> {
    this.generation++;
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
    await this.connecting?.catch(() => undefined);
  }

  private async loop(generation: number): Promise<void> {
    let attempts = 0;
    while (generation === this.generation && this.client === undefined) {
      try {
        const client = await this.connect(this.socketPath);
        if (generation !== this.generation) {
          await client.close();
          return;
        }
        client.onChime((on, atNs) => {
          for (const l of this.chimeListeners) l(on, atNs);
        });
        if (this.lamp) await client.light(true);
        this.client = client;
        this.logger.info({ attempts }, 'board wires connected');
        for (const w of [...this.connectWaiters]) w();
      } catch {
        attempts++;
        await sleep(this.retryMs);
      }
    }
  }
}
