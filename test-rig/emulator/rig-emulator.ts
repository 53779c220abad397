import { type Logger, silentLogger } from '../../common/logger.js';
import type { RigProtocolError } from '../protocol/errors.js';
import type { Frame } from '../protocol/frame.js';
import { MAX_PAYLOAD_BYTES, type RigErrorCode, type RigMessage } from '../protocol/message-types.js';
import { FrameParser } from '../protocol/parser.js';
import type { RigTransport } from '../protocol/transport.js';
import { writeFrame } from '../protocol/writer.js';
import type { BoardWires } from './board-wires.js';
import { type LinkFaults, LinkShaper } from './link-shaper.js';
import type { PowerSwitch } from './power-switch.js';
import { answerToBadFrame, helloReply } from './rig-replies.js';

export interface RigEmulatorOptions {
  /** The rig's end of the serial link. */
  transport: RigTransport;
  board: BoardWires;
  power: PowerSwitch;
  /** Whether the board is powered when the emulator starts (default true). */
  powered?: boolean;
  /** Faults on both directions (each with its own seed derived from `seed`). */
  faults?: LinkFaults;
  logger?: Logger;
  serial?: string;
}

type ActionType = 'PRESS' | 'HOLD' | 'BOUNCE';

/**
 * The rig side of docs/rig-protocol.md on a RigTransport, wired to a sim
 * board: PRESS/HOLD/BOUNCE drive the button wire, chime wire changes become
 * CHIME_EDGE (rig clock = µs since the emulator started), POWER switches the
 * PowerSwitch, CONSOLE forwards console lines, LAMP switches the light in
 * front of the sim camera (the board's `light` wire).
 */
export class RigEmulator {
  readonly received: Frame[] = [];
  private readonly parser = new FrameParser();
  private readonly bootNs = process.hrtime.bigint();
  private readonly logger: Logger;
  private readonly inbound: LinkShaper;
  private readonly outbound: LinkShaper;
  private version: number | undefined;
  private readonly state = {
    power: true,
    lamp: false,
    chimeLevel: 0 as 0 | 1,
    chimeWatch: false,
    console: false,
  };
  private action: ActionType | undefined;
  private closed = false;

  constructor(private readonly options: RigEmulatorOptions) {
    this.logger = (options.logger ?? silentLogger()).child({ module: 'rig-emulator' });
    const faults = options.faults ?? {};
    const seed = faults.seed ?? 1;
    this.inbound = new LinkShaper({ ...faults, seed }, (bytes) => this.receive(bytes));
    this.outbound = new LinkShaper({ ...faults, seed: seed + 1 }, (bytes) => {
      if (!this.closed) options.transport.write(bytes).catch(() => undefined);
    });
    this.state.power = options.powered ?? true;
    options.transport.onData((bytes) => this.inbound.push(bytes));
    options.transport.onClose(() => this.stopShaping());
    options.board.onChime((on, atNs) => this.chimeChanged(on, atNs));
    if (this.state.power) options.board.powerOn();
  }

  /** Bytes damaged or lost by fault injection, per direction. */
  get linkStats() {
    return { toRig: { ...this.inbound.stats }, toHost: { ...this.outbound.stats } };
  }

  get lamp(): boolean {
    return this.state.lamp;
  }

  /** The rig clock: µs since the emulator started. */
  uptimeUs(nowNs = process.hrtime.bigint()): bigint {
    return (nowNs - this.bootNs) / 1000n;
  }

  /** The board's console: forwarded as CONSOLE_DATA while forwarding is on. */
  consoleLine(line: string): void {
    if (!this.state.console || this.closed) return;
    const bytes = new TextEncoder().encode(`${line}\n`);
    for (let i = 0; i < bytes.length; i += MAX_PAYLOAD_BYTES) {
      this.send(0, { type: 'CONSOLE_DATA', data: bytes.subarray(i, i + MAX_PAYLOAD_BYTES) });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopShaping();
    await this.options.board.powerOff();
    await this.options.transport.close();
  }

  private stopShaping(): void {
    this.inbound.stop();
    this.outbound.stop();
  }

  private send(id: number, message: RigMessage, version = this.version ?? 1): void {
    if (this.closed) return;
    this.outbound.push(writeFrame({ version, id, message }));
  }

  private error(id: number, code: RigErrorCode, detail: string): void {
    this.send(id, { type: 'ERROR', code, detail });
  }

  private chimeChanged(on: boolean, atNs: bigint): void {
    this.state.chimeLevel = on ? 1 : 0;
    if (this.state.chimeWatch) {
      this.send(0, { type: 'CHIME_EDGE', level: this.state.chimeLevel, tUs: this.uptimeUs(atNs) });
    }
  }

  private receive(bytes: Uint8Array): void {
    const { frames, errors } = this.parser.push(bytes);
    for (const err of errors) this.rejectFrame(err);
    for (const frame of frames) {
      this.received.push(frame);
      this.handle(frame);
    }
  }

  /** docs/rig-protocol.md, "Answering bad frames": untrusted ids get id 0. */
  private rejectFrame(err: RigProtocolError): void {
    this.logger.warn({ kind: err.kind, err: err.message }, 'bad frame from the host');
    const { id, code } = answerToBadFrame(err);
    this.error(id, code, err.message);
  }

  private handle(frame: Frame): void {
    const { id, message: m } = frame;
    if (m.type === 'HELLO') {
      this.hello(id, m.versions);
      return;
    }
    if (this.version !== undefined && frame.version !== this.version) {
      this.error(id, 'unsupported-version', `session is version ${this.version}`);
      return;
    }
    if (m.type === 'PING') {
      this.send(id, { type: 'PONG', payload: m.payload });
      return;
    }
    if (this.version === undefined) {
      this.error(id, 'not-ready', `${m.type} before HELLO`);
      return;
    }
    switch (m.type) {
      case 'INFO': {
        this.send(id, {
          type: 'INFO_REPLY',
          uptimeUs: this.uptimeUs(),
          busy: !!this.action,
          ...this.state,
        });
        return;
      }
      case 'PRESS':
      case 'HOLD':
      case 'BOUNCE': {
        void this.runAction(id, m);
        return;
      }
      case 'CHIME_WATCH':
        this.state.chimeWatch = m.on;
        {
          this.send(id, { type: 'ACK' });
          return;
        }
      case 'CONSOLE':
        this.state.console = m.on;
        {
          this.send(id, { type: 'ACK' });
          return;
        }
      case 'LAMP':
        void this.switchLamp(id, m.on);
        return;
      case 'POWER': {
        void this.switchPower(id, m.on);
        return;
      }
      default: {
        this.error(id, 'unknown-type', `${m.type} is not a request`);
        return;
      }
    }
  }

  private hello(id: number, versions: number[]): void {
    const reply = helloReply(versions, this.options.serial ?? 'EMU-1');
    if (reply.type === 'HELLO_ACK') {
      this.version = reply.version;
      this.state.chimeWatch = false;
      this.state.console = false;
    }
    this.send(id, reply, 1);
  }

  private async runAction(id: number, m: Extract<RigMessage, { type: ActionType }>): Promise<void> {
    if (this.action !== undefined) {
      this.error(id, 'busy', `${this.action} is running`);
      return;
    }
    this.action = m.type;
    const { board } = this.options;
    try {
      if (!this.state.power) {
        // An unpowered board: the rig still moves the line, nothing answers.
        const ms = m.type === 'BOUNCE' ? (m.edges * m.spacingUs) / 1000 + m.settleMs : m.durationMs;
        await new Promise((r) => setTimeout(r, ms));
      } else if (m.type === 'PRESS') await board.wires.press(m.durationMs);
      else if (m.type === 'HOLD') await board.wires.hold(m.durationMs);
      else await board.wires.bounce(m.edges, m.spacingUs / 1000, m.settleMs);
      this.send(id, { type: 'ACK' });
    } catch (err) {
      this.error(id, 'hardware-fault', `${m.type}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.action = undefined;
    }
  }

  private async switchLamp(id: number, on: boolean): Promise<void> {
    try {
      await this.options.board.setLamp(on);
      this.state.lamp = on;
      this.send(id, { type: 'ACK' });
    } catch (err) {
      this.error(id, 'hardware-fault', `LAMP: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async switchPower(id: number, on: boolean): Promise<void> {
    const { board, power } = this.options;
    try {
      if (on) {
        await power.on();
        board.powerOn();
      } else {
        await board.powerOff();
        await power.off();
      }
      this.state.power = on;
      this.send(id, { type: 'ACK' });
    } catch (err) {
      this.error(id, 'hardware-fault', `POWER: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
