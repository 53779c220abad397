import { connect, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import { silentLogger } from '../../common/logger.js';
import { ReplyWaiter } from '../../common/reply-waiter.js';
import { HalError } from '../errors.js';
import { checkEdges, checkMs, estimateToggleMs } from './edge-patterns.js';
import { LineSplitter } from './line-splitter.js';
import type { WireChange, WireListener } from './sim-wires.js';
import {
  encodeLine,
  type WireReply,
  type WireRequestBody,
  type WireState,
  wireEventSchema,
  wireReplySchema,
} from './wire-protocol.js';

/** Incoming lines are capped too; events and replies are far smaller. */
const MAX_INCOMING_LINE_BYTES = 64 * 1024;
const DEVICE = 'sim-wires';

/** Drives a SimWires in another process through its wire socket. */
export interface WireClient {
  /**
   * Resolves when the server has pressed and released (the action finished)
   * and, with `releasedMs`, kept the button released that long: the next
   * press is then a press of its own, not contact bounce.
   */
  press(ms: number, releasedMs?: number): Promise<void>;
  hold(ms: number): Promise<void>;
  bounce(edges: number, spacingMs: number, settleMs?: number): Promise<void>;
  noise(edges: number, spacingMs: number): Promise<void>;
  /** Switches the light in front of the sim camera (a rig's lamp). */
  light(on: boolean): Promise<void>;
  state(): Promise<WireState>;
  /**
   * The chime changes the server recorded (at most the last 10 000), fetched
   * in pages after the fact: for measurements that must not wake the client
   * while the device under test works.
   */
  chimeHistory(): Promise<WireChange[]>;
  /** Calls `listener` on each chime change; `atNs` is the server's hrtime (CLOCK_MONOTONIC, comparable here). */
  onChime(listener: WireListener): () => void;
  onLed(listener: WireListener): () => void;
  /** Rejects pending requests with HalError('closed') and closes the socket. */
  close(): Promise<void>;
}

export interface WireClientOptions {
  /** Added to each action's own duration to give its reply timeout. Default 10 s. */
  replyMarginMs?: number;
  logger?: Logger;
}

/**
 * Connects to a wire server. Throws HalError `unavailable` (no such socket,
 * nobody listening) or `permission`. Requests get a reply timeout of the
 * action's duration plus `replyMarginMs`; a refused request rejects with
 * HalError('io') carrying the server's message.
 */
export async function connectWires(socketPath: string, options: WireClientOptions = {}): Promise<WireClient> {
  const socket = await open(socketPath);
  return new SocketWireClient(socket, options.replyMarginMs ?? 10_000, options.logger ?? silentLogger());
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const kind = err.code === 'EACCES' || err.code === 'EPERM' ? 'permission' : 'unavailable';
      reject(
        new HalError(kind, path, `cannot connect to the sim wire socket: ${err.message}`, { cause: err }),
      );
    });
  });
}

class SocketWireClient implements WireClient {
  private nextId = 1;
  private readonly waiter = new ReplyWaiter<number, WireReply>({
    timeoutError: (what, id, ms) =>
      new HalError('timeout', DEVICE, `no reply to ${what} (request #${id}) within ${ms} ms`),
  });
  private readonly chimeListeners = new Set<WireListener>();
  private readonly ledListeners = new Set<WireListener>();
  private watching = false;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly marginMs: number,
    private readonly logger: Logger,
  ) {
    const splitter = new LineSplitter(MAX_INCOMING_LINE_BYTES);
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const line of splitter.push(chunk)) this.onLine(line);
      } catch (err) {
        this.logger.error({ err }, 'wire server sent an oversized line; disconnecting');
        socket.destroy();
      }
    });
    socket.on('error', (err) => this.logger.warn({ err }, 'wire socket error'));
    socket.once('close', () => {
      this.closed = true;
      this.waiter.rejectAll(new HalError('closed', DEVICE, 'wire connection closed'));
    });
  }

  async press(ms: number, releasedMs?: number): Promise<void> {
    if (releasedMs === undefined) return this.action({ op: 'press', ms: checkMs('ms', ms) }, ms);
    return this.action(
      { op: 'press', ms: checkMs('ms', ms), releasedMs: checkMs('releasedMs', releasedMs) },
      ms + releasedMs,
    );
  }

  async hold(ms: number): Promise<void> {
    return this.action({ op: 'hold', ms: checkMs('ms', ms) }, ms);
  }

  async bounce(edges: number, spacingMs: number, settleMs?: number): Promise<void> {
    checkEdges('edges', edges);
    checkMs('spacingMs', spacingMs);
    const request = {
      op: 'bounce',
      edges,
      spacingMs,
      ...(settleMs === undefined ? {} : { settleMs: checkMs('settleMs', settleMs) }),
    } as const;
    return this.action(request, estimateToggleMs(edges, spacingMs, settleMs ?? 100));
  }

  async noise(edges: number, spacingMs: number): Promise<void> {
    return this.action(
      { op: 'noise', edges: checkEdges('edges', edges), spacingMs: checkMs('spacingMs', spacingMs) },
      estimateToggleMs(edges, spacingMs),
    );
  }

  /** Switches the light in front of the sim camera (a rig's lamp). */
  async light(on: boolean): Promise<void> {
    await this.request({ op: 'light', on }, 0);
  }

  async state(): Promise<WireState> {
    const reply = await this.request({ op: 'state' }, 0);
    if (!reply.ok || reply.state === undefined)
      throw new HalError('io', DEVICE, 'state reply without a state');
    return reply.state;
  }

  async chimeHistory(): Promise<WireChange[]> {
    const all: WireChange[] = [];
    let from = 0;
    for (;;) {
      const reply = await this.request({ op: 'chime-history', from }, 0);
      const page = reply.ok ? reply.history : undefined;
      if (!page) throw new HalError('io', DEVICE, 'chime-history reply without a history');
      for (const c of page.changes) all.push({ on: c.on, atNs: BigInt(c.atNs) });
      if (page.changes.length === 0) return all;
      from = page.next;
    }
  }

  onChime(listener: WireListener): () => void {
    return this.subscribe(this.chimeListeners, listener);
  }

  onLed(listener: WireListener): () => void {
    return this.subscribe(this.ledListeners, listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiter.rejectAll(new HalError('closed', DEVICE, 'wire client closed'));
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      this.socket.destroySoon();
    });
  }

  private subscribe(set: Set<WireListener>, listener: WireListener): () => void {
    set.add(listener);
    if (!this.watching) {
      this.watching = true;
      this.request({ op: 'watch' }, 0).catch((err: unknown) =>
        this.logger.warn({ err }, 'watch request failed'),
      );
    }
    return () => {
      set.delete(listener);
    };
  }

  private async action(body: WireRequestBody, durationMs: number): Promise<void> {
    await this.request(body, durationMs);
  }

  /** Sends one request; resolves with its ok reply, rejects with HalError otherwise. */
  private async request(body: WireRequestBody, durationMs: number): Promise<WireReply & { ok: true }> {
    if (this.closed) throw new HalError('closed', DEVICE, `cannot send ${body.op}: wire client closed`);
    const id = this.nextId++;
    const timeoutMs = Math.ceil(durationMs) + this.marginMs;
    const reply = this.waiter.wait(id, `'${body.op}' ${JSON.stringify(body)}`, timeoutMs);
    this.socket.write(encodeLine({ id, ...body } as Parameters<typeof encodeLine>[0]));
    const answer = await reply;
    if (!answer.ok) {
      throw new HalError(
        'io',
        DEVICE,
        `server refused ${body.op}: ${answer.error.kind}: ${answer.error.message}`,
      );
    }
    return answer;
  }

  private onLine(line: string): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.logger.warn({ line: line.slice(0, 200) }, 'wire server sent a line that is not JSON');
      return;
    }
    const event = wireEventSchema.safeParse(value);
    if (event.success) {
      const listeners = event.data.ev === 'chime' ? this.chimeListeners : this.ledListeners;
      for (const listener of [...listeners]) {
        try {
          listener(event.data.on, BigInt(event.data.atNs));
        } catch (err) {
          this.logger.error({ err }, 'wire event listener threw; ignored');
        }
      }
      return;
    }
    const reply = wireReplySchema.safeParse(value);
    if (reply.success && reply.data.id !== null && this.waiter.deliver(reply.data.id, reply.data)) return;
    this.logger.warn({ line: line.slice(0, 200) }, 'wire server sent an unexpected line');
  }
}
