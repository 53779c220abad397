import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../common/durable-file.js';

/**
 * The hub's settings file: which broker, and the TLS files for it, so that no
 * command needs --broker/--ca/--cert/--key. Flags win over the environment
 * (DOORBELL_HUB_BROKER, _CA, _CERT, _KEY), which wins over the file, which wins
 * over the default (a local plain broker).
 */
export const MAX_HUB_CONFIG_BYTES = 64 * 1024;
export const DEFAULT_BROKER = 'mqtt://127.0.0.1:1883';
/** Where `serve` listens by default: this machine only. */
export const DEFAULT_LISTEN = '127.0.0.1:8580';
const BROKER_URL = /^mqtts?:\/\/[^\s/]+(:\d+)?\/?$/;

export class HubConfigError extends Error {}

const path = z.string().min(1).max(4096);
const fileSchema = z
  .object({
    broker: z
      .string()
      .max(2048)
      .regex(BROKER_URL, 'must look like mqtt://host:port or mqtts://host:port')
      .optional(),
    ca: path.optional(),
    cert: path.optional(),
    key: path.optional(),
    /** `serve`'s HTTP address, host:port (an IPv6 host in brackets). */
    listen: z
      .string()
      .max(300)
      .refine((t) => listenProblem(t) === undefined, { message: 'must be host:port, e.g. 127.0.0.1:8580' })
      .optional(),
  })
  .strict();

export type HubFileSettings = z.infer<typeof fileSchema>;

export interface HubSettings {
  broker: string;
  listen?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/** `$DOORBELL_HUB_CONFIG`, else `$XDG_CONFIG_HOME/open-doorbell/hub.json`, else `~/.config/open-doorbell/hub.json`. */
export function hubConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOORBELL_HUB_CONFIG) return resolve(env.DOORBELL_HUB_CONFIG);
  const base =
    env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'open-doorbell', 'hub.json');
}

/** Parses the file's text; relative paths are taken from the file's directory. Every problem is named by field. */
export function parseHubConfig(text: string, file: string): HubFileSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new HubConfigError(`${file}: not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 10)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new HubConfigError(`${file}: ${problems}`);
  }
  const dir = dirname(file);
  const fix = (p: string | undefined) => (p === undefined ? undefined : resolve(dir, p));
  const out: HubFileSettings = {};
  if (parsed.data.broker !== undefined) out.broker = parsed.data.broker;
  if (parsed.data.listen !== undefined) out.listen = parsed.data.listen;
  for (const name of ['ca', 'cert', 'key'] as const) {
    const value = fix(parsed.data[name]);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The settings file, or undefined when there is none. */
export async function loadHubConfig(file: string): Promise<HubFileSettings | undefined> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HubConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if (size > MAX_HUB_CONFIG_BYTES) {
    throw new HubConfigError(`${file} is ${size} bytes; the limit is ${MAX_HUB_CONFIG_BYTES}`);
  }
  return parseHubConfig(await readFile(file, 'utf8'), file);
}

/** Flags, then the environment, then the file, then the default, field by field. */
export function resolveHubSettings(
  flags: Partial<HubSettings>,
  env: NodeJS.ProcessEnv,
  file: HubFileSettings | undefined,
): HubSettings {
  const pick = (name: keyof HubSettings, envName: string): string | undefined =>
    flags[name] ?? (env[envName] || undefined) ?? file?.[name];
  const broker = pick('broker', 'DOORBELL_HUB_BROKER') ?? DEFAULT_BROKER;
  if (!BROKER_URL.test(broker))
    throw new HubConfigError(`the broker must look like mqtt://host:port, got '${broker.slice(0, 100)}'`);
  return {
    broker,
    ca: pick('ca', 'DOORBELL_HUB_CA'),
    cert: pick('cert', 'DOORBELL_HUB_CERT'),
    key: pick('key', 'DOORBELL_HUB_KEY'),
    listen: pick('listen', 'DOORBELL_HUB_LISTEN'),
  };
}

/** Why `text` is not a host:port to listen on (port 0: any free one), or undefined. */
export function listenProblem(text: string): string | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(text);
  if (!m) return `'${text.slice(0, 100)}' is not host:port`;
  if (Number(m[2]) > 65535) return `port ${m[2]} is above 65535`;
  return undefined;
}

/** host and port of a checked listen address. */
export function parseListen(text: string): { host: string; port: number } {
  const problem = listenProblem(text);
  if (problem !== undefined) throw new HubConfigError(`the listen address ${problem}`);
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) };
}

/** Writes the settings file (0600, durably); refuses to replace one unless `force`. */
export async function writeHubConfig(file: string, settings: HubSettings, force: boolean): Promise<void> {
  const exists = await stat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw new HubConfigError(`${file}: cannot read: ${err.code ?? err}`);
    },
  );
  if (exists && !force) throw new HubConfigError(`${file} exists: pass --force to replace it`);
  const body: HubFileSettings = { broker: settings.broker };
  if (settings.listen !== undefined) body.listen = settings.listen;
  for (const name of ['ca', 'cert', 'key'] as const) {
    const value = settings[name];
    if (value !== undefined) body[name] = resolve(value);
  }
  parseHubConfig(JSON.stringify(body), file); // what is written must read back
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFileDurably(file, `${JSON.stringify(body, null, 2)}\n`, 0o600);
}
