import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

/** The rig's power relay, as the emulator sees it: cuts and restores the board's power. */
export interface PowerSwitch {
  /** Cuts power at once (no shutdown: the board just dies). Idempotent. */
  off(): Promise<void>;
  /** Restores power (the board boots). Idempotent. */
  on(): Promise<void>;
}

export interface DaemonPowerOptions {
  /** The daemon's JSON configuration (`doorbell run --config FILE`). */
  configPath: string;
  /** Each line the daemon writes on stderr: its serial console. */
  onConsoleLine?: (line: string) => void;
  /** Called with each daemon's pid as it starts (so callers can clean up by pid). */
  onSpawn?: (pid: number) => void;
  /** Repository root; defaults to this checkout. */
  root?: string;
}

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Power for a sim doorbell daemon: `on` spawns `node --import tsx
 * firmware/cli.ts run --config FILE`, `off` kills it with SIGKILL (a power cut,
 * not a shutdown) and waits for it to exit.
 */
export class DaemonPowerSwitch implements PowerSwitch {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  /** Pids of every daemon this switch started, for diagnostics. */
  readonly pids: number[] = [];

  constructor(private readonly options: DaemonPowerOptions) {}

  get isOn(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async on(): Promise<void> {
    if (this.child !== undefined) return;
    const root = this.options.root ?? ROOT;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', resolve(root, 'firmware/cli.ts'), 'run', '--config', this.options.configPath],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    if (child.pid !== undefined) {
      this.pids.push(child.pid);
      this.options.onSpawn?.(child.pid);
    }
    this.exited = new Promise((done) => {
      child.once('exit', () => {
        if (this.child === child) this.child = undefined;
        done();
      });
    });
    await new Promise<void>((ok, fail) => {
      child.once('spawn', ok);
      child.once('error', fail);
    });
    let partial = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.options.onConsoleLine?.(line);
    });
  }

  async off(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }
}
