// What every doorbell-hub command gets (settings, logger, output mode) and the flag parsers they share.
import { CliUsageError } from '../../common/cli-args.js';
import { type LogFormat, type Logger, parseLogFormat } from '../../common/logger.js';
import type { TlsFiles } from '../../common/mqtt-connection.js';
import { type doorbell, publicKeyFromText } from '../../proto/index.js';
import { ROLE_NAMES } from '../../proto/roles.js';
import { parseSigner, type Signer, SignerChoiceError } from '../signer.js';

export class UsageError extends CliUsageError {
  constructor(message: string) {
    super('doorbell-hub', message);
  }
}

export interface Context {
  stateDir: string;
  /** The hub's settings file, and whether it existed when the command started. */
  configPath: string;
  hasConfigFile: boolean;
  broker: string;
  tls: TlsFiles;
  json: boolean;
  timeoutMs: number;
  logger: Logger;
}

export function need0(args: string[], command: string): void {
  if (args.length !== 0) throw new UsageError(`'${command}' takes no arguments, got ${args.length}`);
}

/** `--log-format`, as a usage error when it is not a format. */
export function logFormat(text: string | undefined): LogFormat | undefined {
  if (text === undefined) return undefined;
  try {
    return parseLogFormat(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `--as owner|hub`, as a usage error when it is neither. */
export function signerFlag(as: string | undefined): Signer | undefined {
  try {
    return parseSigner(as);
  } catch (err) {
    if (err instanceof SignerChoiceError) throw new UsageError(err.message);
    throw err;
  }
}

export function parseRole(text: string | undefined, flag: string): doorbell.v1.Role {
  const index = ROLE_NAMES.indexOf(text as (typeof ROLE_NAMES)[number]);
  if (index < 0) throw new UsageError(`${flag} must be one of ${ROLE_NAMES.join(', ')}, got '${text ?? ''}'`);
  return (index + 1) as doorbell.v1.Role;
}

export function parseKeyText(text: string): Uint8Array {
  try {
    return publicKeyFromText(text).publicRaw;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
