import { SerialPort } from 'serialport';
import type { RigErrorKind } from './protocol/errors.js';
import { asDisconnected, RigProtocolError } from './protocol/errors.js';
import type { RigTransport } from './protocol/transport.js';

export interface SerialTransportOptions {
  /** e.g. `/dev/ttyACM0`, or one end of a pseudo-terminal. */
  path: string;
  /** Default 115 200. Ignored by USB CDC devices and pseudo-terminals, but must be valid. */
  baudRate?: number;
}

/**
 * The RigTransport on a serial port (node-serialport). `openSerialTransport`
 * throws RigProtocolError: `unavailable` (no such port), `permission`, `busy`
 * (locked by another process) or `io`. After opening, a port that fails or
 * disappears (USB unplugged, the far end of a pty gone) ends with `onClose(err)`.
 */
export async function openSerialTransport(options: SerialTransportOptions): Promise<RigTransport> {
  const baudRate = options.baudRate ?? 115_200;
  if (!Number.isInteger(baudRate) || baudRate <= 0) {
    throw new TypeError(`serial transport: baudRate must be a positive integer, got ${baudRate}`);
  }
  const port = new SerialPort({ path: options.path, baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => {
    port.open((err) => {
      if (!err) return resolve();
      reject(
        new RigProtocolError(openErrorKind(err.message), `cannot open ${options.path}: ${err.message}`, {
          cause: err,
        }),
      );
    });
  });
  return new SerialTransport(port, options.path);
}

/** node-serialport reports open failures as text only (no `code`): map the OS's words. */
export function openErrorKind(message: string): RigErrorKind {
  if (/no such file|ENOENT|ENXIO|ENODEV/i.test(message)) return 'unavailable';
  if (/permission denied|EACCES|EPERM/i.test(message)) return 'permission';
  if (/lock|busy|resource temporarily unavailable/i.test(message)) return 'busy';
  return 'io';
}

class SerialTransport implements RigTransport {
  private closeListener: ((err?: Error) => void) | undefined;
  private ended = false;
  private endError: Error | undefined;

  constructor(
    private readonly port: SerialPort,
    private readonly path: string,
  ) {
    // A read error (EIO when the far end of a pty closes) arrives as 'error' and/or 'close'.
    port.on('error', (err: Error) => this.end(err));
    port.on('close', (err?: Error | null) => this.end(err ?? undefined));
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.ended) {
      return Promise.reject(new RigProtocolError('disconnected', `${this.path} is closed`));
    }
    return new Promise((resolve, reject) => {
      this.port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (err) => {
        if (!err) return resolve();
        const lost = asDisconnected(err, `writing to ${this.path}`);
        reject(lost);
        this.end(lost);
      });
    });
  }

  onData(listener: (bytes: Uint8Array) => void): void {
    this.port.on('data', (chunk: Buffer) => listener(chunk));
  }

  onClose(listener: (err?: Error) => void): void {
    this.closeListener = listener;
    if (this.ended) listener(this.endError);
  }

  async close(): Promise<void> {
    if (!this.port.isOpen) {
      this.end(undefined);
      return;
    }
    await new Promise<void>((resolve) => {
      this.port.close(() => resolve());
    });
    this.end(undefined);
  }

  private end(err: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = err;
    // A failed port stays open in node-serialport (and may keep polling a dead fd): release it.
    if (err !== undefined && this.port.isOpen) this.port.close(() => undefined);
    this.closeListener?.(err);
  }
}
