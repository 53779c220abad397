import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The raw broker round trip on the same broker, with tools we did not write:
 * a persistent `mosquitto_pub -l` (one message per stdin line, QoS 1) and a
 * persistent `mosquitto_sub` (QoS 1). Each sample is the time from writing a
 * line to mosquitto_pub until mosquitto_sub prints it; one message in flight.
 */
export async function mosquittoRoundTrips(
  port: number,
  payloadBytes: number,
  count: number,
): Promise<number[]> {
  const topic = `bench/baseline/${process.pid}`;
  const common = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', '-q', '1', '-t', topic];
  const sub = spawn('mosquitto_sub', common, { stdio: ['ignore', 'pipe', 'inherit'] });
  const pub = spawn('mosquitto_pub', [...common, '-l'], { stdio: ['pipe', 'ignore', 'inherit'] });
  try {
    const lines = createInterface({ input: sub.stdout })[Symbol.asyncIterator]();
    await sleep(500); // both connected and subscribed
    const samples: number[] = [];
    for (let i = 0; i < count + 10; i++) {
      const tag = String(i).padStart(8, '0');
      const payload = (tag + 'x'.repeat(Math.max(0, payloadBytes - tag.length))).slice(
        0,
        Math.max(payloadBytes, 8),
      );
      const t0 = process.hrtime.bigint();
      pub.stdin.write(`${payload}\n`);
      for (;;) {
        const next = await lines.next();
        if (next.done) throw new Error('mosquitto_sub ended early');
        if (next.value.startsWith(tag)) break;
      }
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (i >= 10) samples.push(ms); // the first few warm up the connections
    }
    return samples;
  } finally {
    pub.stdin.end();
    pub.kill('SIGTERM');
    sub.kill('SIGTERM');
    await Promise.all([exited(pub), exited(sub)]);
  }
}

export function exited(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return once(child, 'exit');
}
