import { spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * Everything published on a broker, as seen by `mosquitto_sub -t '#'` (a client we did
 * not write). `mark(name)` publishes a marker with `mosquitto_pub` and resolves once the
 * tap has seen it: what the tap holds between two marks is exactly what was published
 * between them, without waiting a fixed time.
 */
export interface BrokerTap {
  /** Topics seen so far, in order, markers included as `tap/mark/<name>`. */
  topics(): string[];
  /** Publishes `tap/mark/<name>` and waits until the tap has received it. */
  mark(name: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startBrokerTap(port: number): Promise<BrokerTap> {
  const sub = spawn(
    'mosquitto_sub',
    ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', '-t', '#', '-F', '%t'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const seen: string[] = [];
  let buffered = '';
  let errors = '';
  const waiters = new Set<() => void>();
  sub.stderr.on('data', (d: Buffer) => {
    errors += d.toString();
  });
  const exited = once(sub, 'exit');
  const poll = (): void => {
    for (const w of [...waiters]) w();
  };
  sub.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    seen.push(...lines.filter((l) => l !== ''));
    poll();
  });

  const tap: BrokerTap = {
    topics: () => [...seen],
    async mark(name, timeoutMs = 10_000) {
      const topic = `tap/mark/${name}`;
      const deadline = Date.now() + timeoutMs;
      // The subscription may not be in place yet: publish again (every 250 ms) until the marker comes back.
      while (!seen.includes(topic)) {
        if (sub.exitCode !== null) throw new Error(`mosquitto_sub exited: ${errors}`);
        if (Date.now() > deadline) throw new Error(`the tap never saw ${topic}: ${errors}`);
        const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-m', name], {
          stdio: 'ignore',
        });
        await once(pub, 'exit');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, 250);
          function done(): void {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
          function check(): void {
            if (seen.includes(topic)) done();
          }
          waiters.add(check);
        });
      }
    },
    async stop() {
      if (sub.exitCode === null) {
        sub.kill('SIGTERM');
        await exited;
      }
    },
  };
  return tap;
}
