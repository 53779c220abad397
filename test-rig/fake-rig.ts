import type { Frame } from './protocol/frame.js';
import { CAPABILITIES, type RigMessage, SUPPORTED_VERSIONS } from './protocol/message-types.js';
import { FrameParser } from './protocol/parser.js';
import type { RigTransport } from './protocol/transport.js';
import { writeFrame } from './protocol/writer.js';

/**
 * A minimal rig for driver tests: answers every request the way the protocol
 * says, over any RigTransport (a pty end in tests). `override` may answer
 * differently (a message), stay silent (`null`) or fall back (`undefined`).
 * Not the emulator: it drives no wires.
 */
export class FakeRig {
  readonly received: Frame[] = [];
  override: ((frame: Frame) => RigMessage | null | undefined) | undefined;
  private readonly parser = new FrameParser();
  private readonly state = { power: false, lamp: false, chimeWatch: false, console: false };
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly transport: RigTransport,
    private readonly capabilities = Object.values(CAPABILITIES).reduce((a, b) => a | b, 0),
  ) {
    transport.onData((bytes) => this.receive(bytes));
    transport.onClose(() => this.clearTimers());
  }

  /** Sends a message with request id `id` (0 for unsolicited ones). */
  send(id: number, message: RigMessage): Promise<void> {
    return this.transport.write(writeFrame({ version: 1, id, message }));
  }

  sendRaw(bytes: Uint8Array): Promise<void> {
    return this.transport.write(bytes);
  }

  async close(): Promise<void> {
    this.clearTimers();
    await this.transport.close();
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private receive(bytes: Uint8Array): void {
    const { frames, errors } = this.parser.push(bytes);
    for (const err of errors) {
      if (err.requestId !== undefined)
        this.reply(err.requestId, { type: 'ERROR', code: 'other', detail: err.message });
    }
    for (const frame of frames) {
      this.received.push(frame);
      const answer = this.override?.(frame);
      if (answer === null) continue;
      const [reply, afterMs] = answer === undefined ? this.answer(frame.message) : [answer, 0];
      this.reply(frame.id, reply, afterMs);
    }
  }

  private reply(id: number, message: RigMessage, afterMs = 0): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.send(id, message).catch(() => undefined);
    }, afterMs);
    this.timers.add(timer);
  }

  /** The protocol's answer to a request, and after how many ms it is due (actions reply when finished). */
  private answer(m: RigMessage): [RigMessage, number] {
    const ack: RigMessage = { type: 'ACK' };
    switch (m.type) {
      case 'HELLO': {
        const common = m.versions.filter((v) => SUPPORTED_VERSIONS.includes(v));
        if (common.length === 0) return [{ type: 'ERROR', code: 'unsupported-version', detail: '' }, 0];
        const { capabilities } = this;
        return [
          {
            type: 'HELLO_ACK',
            version: Math.max(...common),
            capabilities,
            firmware: 'fake-1.0',
            serial: 'FAKE-1',
          },
          0,
        ];
      }
      case 'PING':
        return [{ type: 'PONG', payload: m.payload }, 0];
      case 'INFO':
        return [{ type: 'INFO_REPLY', uptimeUs: 1n, chimeLevel: 0, busy: false, ...this.state }, 0];
      case 'PRESS':
      case 'HOLD':
        return [ack, m.durationMs];
      case 'BOUNCE':
        return [ack, Math.ceil((m.edges * m.spacingUs) / 1000) + m.settleMs];
      case 'CHIME_WATCH':
        this.state.chimeWatch = m.on;
        return [ack, 0];
      case 'POWER':
      case 'LAMP':
      case 'CONSOLE':
        this.state[m.type === 'POWER' ? 'power' : m.type === 'LAMP' ? 'lamp' : 'console'] = m.on;
        return [ack, 0];
      default:
        return [{ type: 'ERROR', code: 'unknown-type', detail: `${m.type} is not a request` }, 0];
    }
  }
}
