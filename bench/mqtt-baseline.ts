import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The raw broker round trip on the same broker, with tools we did not write:
 * a persistent `mosquitto_pub -l` (one message per stdin line, QoS 1) and a
 * persistent `mosquitto_sub` (QoS 1). Each sample is the time from writing a
 * line to mosquitto_pub until mosquitto_sub prints it; one message in flight.
 * Kept open so a benchmark can take samples in blocks interleaved with its own.
 */
export class MosquittoRoundTrip {
  private readonly pub: ChildProcess;
  private readonly sub: ChildProcess;
  private readonly lines: AsyncIterator<string>;
  private n = 0;

  private constructor(
    port: number,
    private readonly payloadBytes: number,
  ) {
    const topic = `bench/baseline/${process.pid}`;
    const common = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', '-q', '1', '-t', topic];
    this.sub = spawn('mosquitto_sub', common, { stdio: ['ignore', 'pipe', 'inherit'] });
    this.pub = spawn('mosquitto_pub', [...common, '-l'], { stdio: ['pipe', 'ignore', 'inherit'] });
    if (!this.sub.stdout) throw new Error('mosquitto_sub has no stdout');
    this.lines = createInterface({ input: this.sub.stdout })[Symbol.asyncIterator]();
  }

  static async open(port: number, payloadBytes: number): Promise<MosquittoRoundTrip> {
    const rt = new MosquittoRoundTrip(port, payloadBytes);
    await sleep(500); // both connected and subscribed
    await rt.sample(10); // warm-up, discarded
    return rt;
  }

  /**
   * `count` round trips, in ms. With `gapMs`, each is preceded by that much
   * idle time, as presses are: every process on the path then wakes from
   * sleep, as ours do; without it they run back to back, hot.
   */
  async sample(count: number, gapMs = 0): Promise<number[]> {
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      if (gapMs > 0) await sleep(gapMs);
      const tag = String(this.n++).padStart(8, '0');
      const payload = tag + 'x'.repeat(Math.max(0, this.payloadBytes - tag.length));
      const t0 = process.hrtime.bigint();
      this.pub.stdin?.write(`${payload}\n`);
      for (;;) {
        const next = await this.lines.next();
        if (next.done) throw new Error('mosquitto_sub ended early');
        if (next.value.startsWith(tag)) break;
      }
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return samples;
  }

  async close(): Promise<void> {
    this.pub.stdin?.end();
    this.pub.kill('SIGTERM');
    this.sub.kill('SIGTERM');
    await Promise.all([exited(this.pub), exited(this.sub)]);
  }
}

export function exited(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return once(child, 'exit');
}
