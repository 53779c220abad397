import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectWires, type WireClient } from '../hal/sim/wire-client.js';
import { spawnCli } from './run-cli.js';

export interface DaemonProcess {
  readonly child: ChildProcess;
  /** Everything the daemon wrote to stderr (its JSON log) so far. */
  stderr(): string;
  /** The daemon's sim wires, connected. */
  readonly wires: WireClient;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string | null>;
  /** Whether the process is still running. */
  readonly alive: boolean;
  /** SIGTERM, then waits for the exit; closes the wire client. */
  stop(): Promise<number | string | null>;
}

/**
 * Starts the real `doorbell run --config <configPath>` as a child process and
 * resolves once its sim wire socket (`socket`) accepts a connection: the ring
 * path is up. Rejects (after killing it) if it exits or is not up in 20 s.
 */
export async function startDaemonProcess(configPath: string, socket: string): Promise<DaemonProcess> {
  const child = spawnCli('firmware/cli.ts', ['run', '--config', configPath]);
  child.stdin?.end();
  let err = '';
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | string | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? child.signalCode);
    else child.once('exit', (code, signal) => resolve(code ?? signal));
  });
  const deadline = Date.now() + 20_000;
  let wires: WireClient | undefined;
  while (!wires) {
    // After a kill -9 the old socket file is still there, refusing connections.
    wires = await connectWires(socket).catch(() => undefined);
    if (wires) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the daemon did not start:\n${err}`);
    }
    await sleep(20);
  }
  const connected = wires;
  return {
    child,
    stderr: () => err,
    wires: connected,
    exited,
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
    async stop() {
      await connected.close().catch(() => undefined);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
