import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { readFixedHeader } from '../common/mqtt-frames.js';

export type Direction = 'toBroker' | 'toClient';

/** Which packets to discard, by packet type (the fixed header's high nibble), per direction. */
export type DropFilter = Partial<Record<Direction, (packetType: number) => boolean>>;

export interface MqttProxy {
  readonly port: number;
  /** `mqtt://127.0.0.1:<port>`: give this to the client instead of the broker's URL. */
  readonly url: string;
  /** Client connections accepted so far. */
  readonly connections: number;
  /**
   * From now on, on every connection (open and future), packets the filter
   * accepts are discarded whole; the connection stays open and everything
   * else passes. `undefined` passes everything again.
   */
  dropPackets(filter: DropFilter | undefined): void;
  /** Packets of `packetType` discarded so far in `direction`. */
  dropped(direction: Direction, packetType: number): number;
  /** Resolves once `count` packets of `packetType` have been discarded in `direction` in total. */
  waitDropped(direction: Direction, packetType: number, count: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `count` client connections have been accepted in total. */
  waitConnections(count: number, timeoutMs?: number): Promise<void>;
  /**
   * Stops forwarding from the broker to the newest client and writes `header`
   * to it, then filler bytes as fast as the client reads them, as if the
   * broker sent one huge packet. Resolves once the client closed the
   * connection or `fillerBytes` were written, with the filler bytes the
   * client's socket took.
   */
  floodClient(header: Uint8Array, fillerBytes: number): Promise<number>;
  /** Closes every connection and the listener. */
  stop(): Promise<void>;
}

/** One direction of one connection: bytes are forwarded a whole packet at a time. */
interface Pipe {
  readonly direction: Direction;
  readonly to: Socket;
  /** Bytes not yet forwarded: at most one incomplete packet. */
  pending: Buffer;
  /** While set, nothing more is forwarded (floodClient owns the client side). */
  hijacked: boolean;
}

/**
 * A TCP proxy between an MQTT client and a real broker that misbehaves on
 * demand without closing anything: it discards chosen packets in either
 * direction (an event's PUBLISH that never reaches the broker, a broker that
 * answers pings and acknowledges nothing), or sends the client a packet no
 * compliant broker would.
 */
export async function startMqttProxy(brokerPort: number): Promise<MqttProxy> {
  const sockets = new Set<Socket>();
  const toClientPipes: Pipe[] = [];
  const droppedCounts = new Map<string, number>();
  const waiters = new Set<() => void>();
  let filter: DropFilter | undefined;
  let accepted = 0;
  const key = (direction: Direction, type: number): string => `${direction}:${type}`;
  const notify = (): void => {
    for (const w of waiters) w();
  };

  const forward = (pipe: Pipe, chunk: Buffer): void => {
    if (pipe.hijacked) return;
    pipe.pending = pipe.pending.length === 0 ? chunk : Buffer.concat([pipe.pending, chunk]);
    let offset = 0;
    for (;;) {
      const header = readFixedHeader(pipe.pending, offset);
      if (header === 'incomplete') break;
      if (header === 'malformed') {
        pipe.to.destroy();
        return;
      }
      const end = offset + header.headerBytes + header.remainingLength;
      if (end > pipe.pending.length) break;
      if (filter?.[pipe.direction]?.(header.type)) {
        const k = key(pipe.direction, header.type);
        droppedCounts.set(k, (droppedCounts.get(k) ?? 0) + 1);
        notify();
      } else {
        pipe.to.write(pipe.pending.subarray(offset, end));
      }
      offset = end;
    }
    pipe.pending = pipe.pending.subarray(offset);
  };

  const server = createServer((client) => {
    const broker = connect({ port: brokerPort, host: '127.0.0.1' });
    for (const s of [client, broker]) {
      s.setNoDelay(true);
      sockets.add(s);
    }
    const toBroker: Pipe = { direction: 'toBroker', to: broker, pending: Buffer.alloc(0), hijacked: false };
    const toClient: Pipe = { direction: 'toClient', to: client, pending: Buffer.alloc(0), hijacked: false };
    toClientPipes.push(toClient);
    accepted += 1;
    notify();
    client.on('data', (d: Buffer) => forward(toBroker, d));
    broker.on('data', (d: Buffer) => forward(toClient, d));
    const close = (): void => {
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    for (const s of [client, broker]) {
      s.on('close', close);
      s.on('error', close);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');
  const port = address.port;

  const waitFor = (ready: () => boolean, what: string, timeoutMs: number): Promise<void> =>
    new Promise((resolve, reject) => {
      if (ready()) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`proxy: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const check = (): void => {
        if (!ready()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });

  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    get connections() {
      return accepted;
    },
    dropPackets(next) {
      filter = next;
    },
    dropped: (direction, type) => droppedCounts.get(key(direction, type)) ?? 0,
    waitDropped: (direction, type, count, timeoutMs = 10_000) =>
      waitFor(
        () => (droppedCounts.get(key(direction, type)) ?? 0) >= count,
        `${count} packets of type ${type} dropped ${direction}`,
        timeoutMs,
      ),
    waitConnections: (count, timeoutMs = 10_000) =>
      waitFor(() => accepted >= count, `${count} connections`, timeoutMs),
    async floodClient(header, fillerBytes) {
      const pipe = toClientPipes.at(-1);
      if (!pipe || pipe.to.destroyed) throw new Error('proxy: no client connected');
      pipe.hijacked = true;
      const client = pipe.to;
      const filler = Buffer.alloc(64 * 1024, 0x5a);
      let written = 0;
      let closed = false;
      const onClose = new Promise<void>((resolve) => {
        if (client.destroyed) resolve();
        else client.once('close', () => resolve());
      }).then(() => {
        closed = true;
      });
      client.write(header);
      while (!closed && written < fillerBytes) {
        const n = Math.min(filler.length, fillerBytes - written);
        written += n;
        if (!client.write(filler.subarray(0, n))) {
          await Promise.race([once(client, 'drain').catch(() => undefined), onClose]);
        }
      }
      if (!closed) await onClose;
      return written - client.writableLength;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
