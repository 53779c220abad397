import { type ParseArgsConfig, parseArgs } from 'node:util';

/** The product version every executable reports with `--version`; a test keeps it equal to package.json. */
export const PRODUCT_VERSION = '0.1.0';

/** A mistake on the command line: the CLI prints the message (never the whole help) and exits 2. */
export class CliUsageError extends Error {
  constructor(
    readonly program: string,
    message: string,
  ) {
    super(message);
    this.name = 'CliUsageError';
  }

  /** The line a CLI prints: the mistake and where to look, not the whole help text. */
  line(): string {
    return `${this.program}: ${this.message}\n(\`${this.program} --help\` lists every command and option)\n`;
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Edit distance counting a swap of two neighbours as one edit (option names, command words). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The known word closest to `word`: a prefix match, or at most a third of its
 * letters (at least 1, at most 3) different. Undefined when nothing is close.
 */
export function nearest(word: string, known: readonly string[]): string | undefined {
  const prefixed = known.filter((k) => k.startsWith(word) && word.length >= 2);
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  for (const k of known) {
    const d = distance(word, k);
    if (d <= bestDistance && (best === undefined || d < bestDistance)) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** `unknown command 'rign'; did you mean 'ring'?` as a CliUsageError. */
export function unknownWord(
  program: string,
  what: string,
  word: string,
  known: readonly string[],
): CliUsageError {
  const near = nearest(word, known);
  return new CliUsageError(
    program,
    `unknown ${what} '${word}'${near === undefined ? '' : `; did you mean '${near}'?`}`,
  );
}

/**
 * node:util parseArgs (strict), with mistakes turned into one-line
 * CliUsageErrors that suggest the nearest option.
 */
export function parseCli<T extends Options>(
  program: string,
  args: string[],
  options: T,
): ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const given = /'(-{1,2}[^']*)'/.exec(e.message)?.[1] ?? '';
      const name = given.replace(/^-+/, '').split('=')[0] ?? '';
      const near = nearest(name, Object.keys(options));
      throw new CliUsageError(
        program,
        `unknown option '${given}'${near === undefined ? '' : `; did you mean '--${near}'?`}`,
      );
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // "Option '--broker <value>' argument missing" and the like: keep Node's wording, drop its hints.
      throw new CliUsageError(program, e.message.split('\n')[0] ?? e.message);
    }
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new CliUsageError(program, e.message.split('\n')[0] ?? e.message);
    }
    throw err;
  }
}

/** True when the arguments ask for the version (`--version` or `-V` anywhere before `--`). */
export function wantsVersion(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--version' || a === '-V') return true;
  }
  return false;
}

/** What `--version` prints: the program and the product version. */
export function versionLine(program: string): string {
  return `${program} ${PRODUCT_VERSION}\n`;
}
