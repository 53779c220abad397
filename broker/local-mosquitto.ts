import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../common/free-port.js';

export interface RunningBroker {
  readonly port: number;
  readonly url: string;
  /** Everything Mosquitto printed, for failure messages. */
  output(): string;
  /** Stops this broker (SIGTERM, then SIGKILL after 2 s). Safe to call twice. */
  stop(): Promise<void>;
  /** Sends SIGHUP: Mosquitto re-reads its configuration, certificates and CRL. */
  reload(): void;
}

export interface BrokerOptions {
  /** Reuse a port, e.g. to bring a broker back where a client expects it. */
  port?: number;
  /** Extra lines appended to mosquitto.conf. */
  extraConfig?: string[];
}

const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

/**
 * Starts a real Mosquitto on a free loopback port and waits until it accepts
 * connections. The caller must `stop()` it, normally in `after()`.
 */
export async function startMosquitto(options: BrokerOptions = {}): Promise<RunningBroker> {
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-mosquitto-'));
  const confPath = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    ...(options.extraConfig ?? []),
  ];
  await writeFile(confPath, `${lines.join('\n')}\n`);
  return launchMosquitto({ confPath, port, url: `mqtt://127.0.0.1:${port}`, cleanupDir: dir });
}

export interface LaunchOptions {
  confPath: string;
  /** The loopback port the configuration listens on; readiness is a TCP connect to it. */
  port: number;
  url: string;
  /** Removed (recursively) when the broker stops. */
  cleanupDir: string;
}

/**
 * Spawns Mosquitto with an existing configuration and waits until its port
 * accepts TCP connections; on failure it stops the broker and throws with its output.
 */
export async function launchMosquitto(options: LaunchOptions): Promise<RunningBroker> {
  const { confPath, port, url, cleanupDir: dir } = options;
  const child: ChildProcess = spawn(MOSQUITTO, ['-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exitPromise;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`mosquitto did not start on port ${port}:\n${out}`);
    }
    await sleep(25);
  }
  const reload = (): void => {
    if (!exited) child.kill('SIGHUP');
  };
  return { port, url, output: () => out, stop, reload };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
