/**
 * The duplex byte stream under the rig driver: a USB serial port in the lab
 * (`test-rig/serial-transport.ts`), one end of a pseudo-terminal in tests and
 * in the emulator. Implementations deliver bytes in order, in chunks of any size.
 */
export interface RigTransport {
  /**
   * Hands `bytes` to the operating system. Resolves once written (not once the
   * rig read them); rejects with RigProtocolError('disconnected') when the
   * transport is closed or fails.
   */
  write(bytes: Uint8Array): Promise<void>;
  /** Registers the receiver of incoming bytes. Called once, before any write. */
  onData(listener: (bytes: Uint8Array) => void): void;
  /**
   * Registers the listener called once when the stream ends for any reason:
   * with an error when the far end disappeared or the port failed, without one
   * after `close()`.
   */
  onClose(listener: (err?: Error) => void): void;
  /** Closes the stream; idempotent; resolves when the port is released. */
  close(): Promise<void>;
}
