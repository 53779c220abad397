import type { WireClient, WireListener } from '../../hal/index.js';
import type { RigTransport } from '../protocol/transport.js';
import type { PowerSwitch } from './power-switch.js';

/** A WireClient that records what it was asked and lets the test play chime changes. */
export class FakeWires implements WireClient {
  readonly calls: string[] = [];
  private readonly chime = new Set<WireListener>();
  async press(ms: number) {
    this.calls.push(`press ${ms}`);
    await new Promise((r) => setTimeout(r, ms));
  }
  async hold(ms: number) {
    this.calls.push(`hold ${ms}`);
    await new Promise((r) => setTimeout(r, ms));
  }
  async bounce(edges: number, spacingMs: number, settleMs = 100) {
    this.calls.push(`bounce ${edges} ${spacingMs} ${settleMs}`);
  }
  async noise() {}
  async light(on: boolean) {
    this.calls.push(`light ${on}`);
  }
  async state() {
    return { button: false, chime: false, led: false, light: false };
  }
  async chimeHistory() {
    return [];
  }
  onChime(listener: WireListener) {
    this.chime.add(listener);
    return () => this.chime.delete(listener);
  }
  onLed() {
    return () => undefined;
  }
  async close() {}
  playChime(on: boolean, atNs: bigint): void {
    for (const l of this.chime) l(on, atNs);
  }
}

export class FakePower implements PowerSwitch {
  readonly log: string[] = [];
  async on() {
    this.log.push('on');
  }
  async off() {
    this.log.push('off');
  }
}

/** Two in-memory transports wired back to back. */
export function memoryPair(): [RigTransport, RigTransport] {
  const data: Array<(b: Uint8Array) => void> = [() => {}, () => {}];
  const closers: Array<(e?: Error) => void> = [() => {}, () => {}];
  let open = true;
  const end = (me: 0 | 1): RigTransport => ({
    async write(bytes) {
      if (!open) throw new Error('closed');
      const copy = Uint8Array.from(bytes);
      setImmediate(() => data[1 - me]?.(copy));
    },
    onData: (cb) => {
      data[me] = cb;
    },
    onClose: (cb) => {
      closers[me] = cb;
    },
    async close() {
      if (!open) return;
      open = false;
      for (const c of closers) c();
    },
  });
  return [end(0), end(1)];
}
