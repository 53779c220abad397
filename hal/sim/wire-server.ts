import { unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import { halErrorFromErrno } from '../errno.js';
import { LineSplitter } from './line-splitter.js';
import type { SimWires } from './sim-wires.js';
import { clearStaleSocket, restrictToOwner } from './socket-file.js';
import {
  decodeRequest,
  encodeLine,
  HISTORY_PAGE,
  MAX_LINE_BYTES,
  type WireReply,
  type WireRequest,
} from './wire-protocol.js';

/** Requests a single connection may have in flight; more are refused. */
export const MAX_PENDING_PER_CONNECTION = 64;
/** A watcher that lets this much output pile up unread is dropped. */
export const MAX_BUFFERED_BYTES = 1024 * 1024;

export interface WireServer {
  readonly path: string;
  /** Stops listening, drops the connections, cuts running actions short and removes the socket file. */
  close(): Promise<void>;
}

/**
 * Serves `wires` on a Unix socket (mode 0600) so another process can press
 * the button and watch the chime and LED. Actions from all connections run
 * one after another, as one finger on one button would.
 */
export async function startWireServer(
  wires: SimWires,
  socketPath: string,
  logger: Logger,
): Promise<WireServer> {
  await clearStaleSocket(socketPath);
  const abort = new AbortController();
  const sockets = new Set<Socket>();
  let queue: Promise<unknown> = Promise.resolve();
  const enqueue = (action: () => Promise<void>): Promise<void> => {
    const run = queue.then(action);
    queue = run.catch(() => {});
    return run;
  };

  // Half-open: a client may shut down its side after its requests (`printf ... | socat -`);
  // it still gets every answer, and the connection ends once they are sent.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveConnection(socket, { wires, logger, enqueue, signal: abort.signal });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(halErrorFromErrno(err, socketPath, 'listening')));
    server.listen(socketPath, () => resolve());
  });
  server.on('error', (err) => logger.error({ err }, 'wire server error'));
  try {
    await restrictToOwner(socketPath); // until now the umask applied (sockets need write access to connect)
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw halErrorFromErrno(err, socketPath, 'restricting the socket to its owner');
  }
  logger.info({ socketPath }, 'sim wires listening');

  let closing: Promise<void> | undefined;
  return {
    path: socketPath,
    close: () => {
      closing ??= closeServer(server, sockets, abort, socketPath);
      return closing;
    },
  };
}

async function closeServer(server: Server, sockets: Set<Socket>, abort: AbortController, path: string) {
  abort.abort();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of sockets) socket.destroy();
  await closed;
  await unlink(path).catch(() => {});
}

interface ConnectionDeps {
  wires: SimWires;
  logger: Logger;
  enqueue: (action: () => Promise<void>) => Promise<void>;
  signal: AbortSignal;
}

function serveConnection(socket: Socket, deps: ConnectionDeps): void {
  const splitter = new LineSplitter(MAX_LINE_BYTES);
  const unwatch: Array<() => void> = [];
  let pending = 0;
  let dropped = false;
  const send = (message: Parameters<typeof encodeLine>[0]): void => {
    if (socket.destroyed || !socket.writable) return;
    socket.write(encodeLine(message));
    if (socket.writableLength > MAX_BUFFERED_BYTES) {
      deps.logger.warn('wire client does not read its socket; dropped');
      socket.destroy();
    }
  };
  let inputEnded = false;
  /** After the client's end of input: end ours once no answer is outstanding (and nothing is watched). */
  const finishIfDone = (): void => {
    if (inputEnded && pending === 0 && unwatch.length === 0 && !socket.destroyed) socket.end();
  };
  socket.on('end', () => {
    inputEnded = true;
    finishIfDone();
  });
  socket.on('error', (err) => deps.logger.debug({ err }, 'wire connection error'));
  socket.once('close', () => {
    for (const off of unwatch) off();
  });
  socket.on('data', (chunk: Buffer) => {
    if (dropped) return;
    let lines: string[];
    try {
      lines = splitter.push(chunk);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      dropped = true;
      socket.end(encodeLine({ id: null, ok: false, error: { kind: 'bad-request', message } }));
      socket.destroySoon();
      return;
    }
    for (const line of lines) {
      const request = decodeRequest(line);
      if ('ok' in request) {
        send(request);
      } else if (request.op === 'watch') {
        if (unwatch.length === 0) {
          // The time is taken at the write; the notification leaves after the
          // current turn, so watching never slows the code that drove the line
          // (a real GPIO write has no observer inside it).
          const event = (ev: 'chime' | 'led') => (on: boolean, atNs: bigint) => {
            setImmediate(() => send({ ev, on, atNs: atNs.toString() }));
          };
          unwatch.push(deps.wires.onChime(event('chime')), deps.wires.onLed(event('led')));
        }
        send({ id: request.id, ok: true });
      } else if (request.op === 'chime-history') {
        const page = deps.wires.chimeHistoryPage(request.from, HISTORY_PAGE);
        send({
          id: request.id,
          ok: true,
          history: {
            first: page.first,
            next: page.next,
            changes: page.changes.map((c) => ({ on: c.on, atNs: c.atNs.toString() })),
          },
        });
      } else if (request.op === 'light') {
        deps.wires.setLight(request.on);
        send({ id: request.id, ok: true });
      } else if (request.op === 'state') {
        const { wires } = deps;
        send({
          id: request.id,
          ok: true,
          state: {
            button: wires.buttonState(),
            chime: wires.chimeState(),
            led: wires.ledState(),
            light: wires.lightState(),
          },
        });
      } else if (pending >= MAX_PENDING_PER_CONNECTION) {
        send(failed(request.id, `more than ${MAX_PENDING_PER_CONNECTION} requests in flight`));
      } else {
        pending++;
        deps
          .enqueue(() => perform(deps.wires, request, deps.signal))
          .then(
            () => send({ id: request.id, ok: true }),
            (err: unknown) => send(failed(request.id, err instanceof Error ? err.message : String(err))),
          )
          .finally(() => {
            pending--;
            finishIfDone();
          });
      }
    }
  });
}

function failed(id: number, message: string): WireReply {
  return { id, ok: false, error: { kind: 'failed', message } };
}

function perform(wires: SimWires, request: WireRequest, signal: AbortSignal): Promise<void> {
  const options = { signal };
  switch (request.op) {
    case 'press':
      return wires.press(request.ms, options, request.releasedMs);
    case 'hold':
      return wires.hold(request.ms, options);
    case 'bounce':
      return wires.bounce(request.edges, request.spacingMs, request.settleMs, options);
    case 'noise':
      return wires.noise(request.edges, request.spacingMs, options);
    case 'state':
    case 'light':
    case 'chime-history':
    case 'watch':
      return Promise.resolve();
    default: {
      const unreachable: never = request;
      return Promise.reject(new Error(`unhandled op ${JSON.stringify(unreachable)}`));
    }
  }
}
