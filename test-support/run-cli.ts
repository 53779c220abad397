import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { isolatedEnv } from './isolated-env.js';

const ROOT = resolve(import.meta.dirname, '..');

/** Every executable of the project, by its source file. */
export type CliScript =
  | 'firmware/cli.ts'
  | 'hub/cli.ts'
  | 'flash/cli.ts'
  | 'test-rig/cli.ts'
  | 'scripts/start.ts'
  | 'scripts/bundle.ts'
  | 'broker/make-broker-config.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns one of our TypeScript CLIs through tsx, as `npm run doorbell -- ...` would. */
export function spawnCli(script: CliScript, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...isolatedEnv(), ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs a CLI to completion (killing it after `timeoutMs`) and collects its output. */
export function runCli(
  script: CliScript,
  args: string[],
  timeoutMs = 30_000,
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  const child = spawnCli(script, args, env);
  child.stdin?.end();
  return collect(child, timeoutMs);
}

export function collect(child: ChildProcess, timeoutMs: number): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}
