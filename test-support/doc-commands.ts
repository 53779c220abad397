import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { isolatedEnv } from './isolated-env.js';

/**
 * The commands the documentation tells a user to type, so that tests can run
 * them as written. A test takes one with `docCommand(file, prefix)` (the
 * literal call is what `scripts/doc-commands.test.ts` looks for: every
 * project command in the docs must be taken by some test), replaces only the
 * documented placeholders (`odb1:...`, `age1...`, `hub.local`) and runs it.
 */

export const REPO = resolve(import.meta.dirname, '..');

/** The documents whose shell blocks are checked. */
export function documentedFiles(): string[] {
  const docs = readdirSync(join(REPO, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs.sort(), 'test-rig/README.md', 'hal/README.md', 'proto/README.md'];
}

export interface DocCommand {
  file: string;
  /** 1-based line of the command's first line. */
  line: number;
  /** The command with `\` continuations joined and a trailing `# comment` removed. */
  text: string;
}

/** Removes a trailing comment: a `#` outside quotes that starts a word. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1] ?? ''))) {
      return line.slice(0, i);
    }
  }
  return line;
}

/** Every command in the ```sh / ```bash / ```shell blocks of a markdown text. */
export function commandsIn(file: string, markdown: string): DocCommand[] {
  const out: DocCommand[] = [];
  const lines = markdown.split('\n');
  let inBlock = false;
  let pending: { line: number; parts: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    if (/^```/.test(raw)) {
      inBlock = !inBlock && /^```(sh|bash|shell)\s*$/.test(raw);
      pending = undefined;
      continue;
    }
    if (!inBlock) continue;
    const stripped = stripComment(raw).trimEnd();
    const continues = stripped.endsWith('\\');
    const part = (continues ? stripped.slice(0, -1) : stripped).trim();
    if (pending === undefined) {
      if (part === '') continue;
      pending = { line: i + 1, parts: [] };
    }
    if (part !== '') pending.parts.push(part);
    if (!continues) {
      out.push({ file, line: pending.line, text: pending.parts.join(' ') });
      pending = undefined;
    }
  }
  return out;
}

export function docCommands(file: string): DocCommand[] {
  return commandsIn(file, readFileSync(join(REPO, file), 'utf8'));
}

/**
 * The commands a `docCommand(file, prefix)` call takes: the one equal to
 * `prefix` when there is one (a short command that starts others), else every
 * one that starts with it.
 */
export function matching(commands: DocCommand[], prefix: string): DocCommand[] {
  const exact = commands.filter((c) => c.text === prefix);
  return exact.length > 0 ? exact : commands.filter((c) => c.text.startsWith(prefix));
}

/** The one command in `file` that is or starts with `prefix`; throws when there is none or more than one. */
export function docCommand(file: string, prefix: string): DocCommand {
  const found = matching(docCommands(file), prefix);
  if (found.length !== 1) {
    throw new Error(
      `${file}: ${found.length} commands start with '${prefix}'${found.map((c) => `\n  ${c.line}: ${c.text}`).join('')}`,
    );
  }
  return found[0] as DocCommand;
}

/**
 * The command with documented placeholders replaced: each key of `values` is
 * replaced, as literal text, everywhere it occurs; a key that does not occur
 * is an error, so a test cannot silently run something other than the docs.
 */
export function withValues(command: DocCommand, values: Record<string, string>): string {
  let text = command.text;
  for (const [placeholder, value] of Object.entries(values)) {
    if (!text.includes(placeholder)) {
      throw new Error(`${command.file}:${command.line}: '${placeholder}' is not in '${command.text}'`);
    }
    text = text.split(placeholder).join(value);
  }
  return text;
}

/** Splits a command into words as a POSIX shell would for these simple cases: quotes, `~/`. */
export function words(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let started = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else current += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      started = true;
    } else if (/\s/.test(c)) {
      if (started) out.push(current);
      current = '';
      started = false;
    } else {
      if (
        !started &&
        c === '~' &&
        (text[i + 1] === '/' || text[i + 1] === undefined || /\s/.test(text[i + 1] ?? ''))
      ) {
        current += homedir();
      } else {
        current += c;
      }
      started = true;
    }
  }
  if (quote !== undefined) throw new Error(`unterminated quote in '${text}'`);
  if (started) out.push(current);
  return out;
}

export interface DocRun {
  child: ChildProcess;
  /** Everything the command wrote so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the output matches (or rejects when the command exits or `timeoutMs` passes first). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code; kills the whole process group after `timeoutMs`. */
  exited(timeoutMs?: number): Promise<number | null>;
  /** Ends the command and everything it started (its process group), and waits for it. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs a documented command the way a user does, in `bash -c` from the
 * repository (or `cwd`), in its own process group so that `npm run`'s node
 * child is stopped with it.
 */
export function runDocCommand(text: string, options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): DocRun {
  const child = spawn('bash', ['-c', text], {
    cwd: options.cwd ?? REPO,
    env: { ...process.env, ...isolatedEnv(), ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  const poke = (): void => {
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    poke();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    poke();
  });
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  let exitCode: number | null | undefined;
  void exit.then((code) => {
    exitCode = code;
    poke();
  });
  const kill = (signal: NodeJS.Signals): void => {
    if (exitCode !== undefined || child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const run: DocRun = {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolvePromise, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `'${text}' printed no ${pattern} in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
            ),
          );
        }, timeoutMs);
        const check = (): void => {
          const m = pattern.exec(stdout) ?? pattern.exec(stderr);
          if (m || exitCode !== undefined) {
            waiters.delete(check);
            clearTimeout(timer);
            if (m) resolvePromise(m);
            else
              reject(
                new Error(
                  `'${text}' exited (${exitCode}) before printing ${pattern}\nstdout: ${stdout}\nstderr: ${stderr}`,
                ),
              );
          }
        };
        waiters.add(check);
        check();
      });
    },
    async exited(timeoutMs = 60_000) {
      const timer = setTimeout(() => kill('SIGKILL'), timeoutMs);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
    async stop(signal = 'SIGTERM') {
      kill(signal);
      return run.exited(10_000);
    },
  };
  return run;
}
