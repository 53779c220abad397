import { readFile, stat } from 'node:fs/promises';
import { type ParseError, parse as parseJsonc, printParseErrorCode } from 'jsonc-parser';
import type { z } from 'zod';
import { type DoorbellConfig, doorbellConfigSchema } from './schema.js';

/** Config files are small; anything bigger is a mistake or an attack. */
export const MAX_CONFIG_BYTES = 256 * 1024;

export interface ConfigProblem {
  /** Dotted path into the config, e.g. `hal.chime.maxOnMs`; empty for the whole file. */
  path: string;
  message: string;
}

/** Every problem with a configuration, so the user can fix all of them at once. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `invalid configuration (${source}):\n${problems.map((p) => `  - ${p.path || '(root)'}: ${p.message}`).join('\n')}`,
    );
  }
}

/** Command-line flags that override the file. */
export interface ConfigOverrides {
  broker?: string | undefined;
  stateDir?: string | undefined;
  hal?: string | undefined;
  deviceId?: string | undefined;
}

export async function loadConfigFile(path: string, overrides: ConfigOverrides = {}): Promise<DoorbellConfig> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new ConfigError(path, [
      { path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? err}` },
    ]);
  }
  if (size > MAX_CONFIG_BYTES) {
    throw new ConfigError(path, [
      { path: '', message: `file is ${size} bytes; the limit is ${MAX_CONFIG_BYTES}` },
    ]);
  }
  const text = await readFile(path, 'utf8');
  return parseConfig(parseConfigText(text, path), path, overrides);
}

/**
 * JSON, with `//` and `/* *\/` comments allowed (as in doorbell.example.json);
 * every syntax error is listed with its line and column.
 */
export function parseConfigText(text: string, source: string): unknown {
  const errors: ParseError[] = [];
  const raw: unknown = parseJsonc(text, errors, { allowTrailingComma: false, disallowComments: false });
  if (errors.length > 0) {
    throw new ConfigError(
      source,
      errors.slice(0, 10).map((e) => {
        const before = text.slice(0, e.offset).split('\n');
        return {
          path: '',
          message: `not valid JSON: ${printParseErrorCode(e.error)} at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`,
        };
      }),
    );
  }
  return raw;
}

/** Validates a parsed config object, with flags applied on top; lists every problem. */
export function parseConfig(raw: unknown, source: string, overrides: ConfigOverrides = {}): DoorbellConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, [{ path: '', message: 'expected a JSON object' }]);
  }
  const merged = applyOverrides(raw as Record<string, unknown>, overrides);
  const result = doorbellConfigSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(source, problemsOf(result.error));
  return result.data;
}

function applyOverrides(raw: Record<string, unknown>, o: ConfigOverrides): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  const section = (key: string): Record<string, unknown> => {
    const value = out[key];
    const copy = value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value } : {};
    out[key] = copy;
    return copy;
  };
  if (o.broker !== undefined) section('broker').url = o.broker;
  if (o.stateDir !== undefined) out.stateDir = o.stateDir;
  if (o.hal !== undefined) section('hal').backend = o.hal;
  if (o.deviceId !== undefined) out.deviceId = o.deviceId;
  return out;
}

function problemsOf(error: z.ZodError): ConfigProblem[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}
