/** Thrown by LineSplitter when a line exceeds its cap. */
export class LineTooLongError extends Error {
  override readonly name = 'LineTooLongError';
  constructor(readonly maxBytes: number) {
    super(`line longer than ${maxBytes} bytes`);
  }
}

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into newline-terminated UTF-8 lines, refusing any line
 * longer than `maxBytes` (newline excluded) as soon as that is known, so a
 * peer cannot make us buffer without bound. After it throws, the splitter is
 * spent and the connection should be dropped.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed = false;

  constructor(readonly maxBytes: number) {}

  /** Returns the complete lines in `chunk` (with anything left over from before). */
  push(chunk: Buffer): string[] {
    if (this.failed) throw new LineTooLongError(this.maxBytes);
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      this.take(chunk.subarray(start, nl));
      lines.push(Buffer.concat(this.pending).toString('utf8'));
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
    }
    this.take(chunk.subarray(start));
    return lines;
  }

  private take(part: Buffer): void {
    if (part.length === 0) return;
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.maxBytes) {
      this.failed = true;
      this.pending = [];
      throw new LineTooLongError(this.maxBytes);
    }
    this.pending.push(part);
  }
}
