import { open } from 'node:fs/promises';

/**
 * Reads a file while this process appends to it (a transfer's partial file,
 * so that decryption keeps pace with the chunks): what is there, then more
 * after each `grown()`, until `end()` says nothing more will come; `fail()`
 * ends the reading with that error. Memory is one read buffer: a reader that
 * falls behind reads later, from the disk, instead of queueing chunks.
 */
export class FileFollower implements AsyncIterable<Uint8Array> {
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** Set by every call below: a call between a read and the wait is not lost. */
  private signalled = false;

  constructor(
    private readonly path: string,
    private readonly readBytes = 64 * 1024,
  ) {}

  /** More bytes were appended. */
  grown(): void {
    this.signal();
  }

  /** Every byte is appended: the reading ends at the end of the file. */
  end(): void {
    this.ended = true;
    this.signal();
  }

  /** The reading ends with this error, whatever is left in the file. */
  fail(err: Error): void {
    this.failure ??= err;
    this.signal();
  }

  private signal(): void {
    this.signalled = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    const file = await open(this.path, 'r');
    try {
      let position = 0;
      for (;;) {
        if (this.failure) throw this.failure;
        this.signalled = false;
        // Whether the end was announced is read before the file: a read that then finds nothing is the end.
        const wasEnded = this.ended;
        const buffer = Buffer.allocUnsafe(this.readBytes);
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
        if (bytesRead > 0) {
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
          continue;
        }
        if (wasEnded) return;
        if (this.signalled) continue;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      await file.close();
    }
  }
}
