import { type ChildProcess, spawn } from 'node:child_process';

/** Two connected pseudo-terminals made by socat, for tests and the emulator. */
export interface PtyPair {
  /** The two /dev/pts paths; bytes written to one are read from the other. */
  paths: [string, string];
  pid: number;
  /** Kills this socat (by its pid) and waits for it to exit; both ends then hang up. */
  kill(): Promise<void>;
}

const PTY_LINE = /PTY is (\/dev\/\S+)/g;

/**
 * Starts `socat -d -d pty,raw,echo=0 pty,raw,echo=0` and reads the two pty
 * paths from its stderr. Rejects when socat is missing or says nothing
 * useful within `timeoutMs`.
 */
export function createPtyPair(timeoutMs = 5000): Promise<PtyPair> {
  const child = spawn('socat', ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`socat gave no pty paths within ${timeoutMs} ms: ${stderr.trim()}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start socat: ${err.message}`, { cause: err }));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const paths = [...stderr.matchAll(PTY_LINE)].map((m) => m[1] ?? '');
      if (paths.length < 2 || !/starting data transfer loop/.test(stderr)) return;
      clearTimeout(timer);
      child.stderr?.removeAllListeners('data');
      child.stderr?.resume();
      const [a = '', b = ''] = paths;
      resolve({ paths: [a, b], pid: child.pid ?? -1, kill: () => killChild(child) });
    });
  });
}

function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
