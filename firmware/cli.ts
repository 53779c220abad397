#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createLogger } from '../common/logger.js';
import { publicKeyToText } from '../proto/index.js';
import { ConfigError, type ConfigOverrides, loadConfigFile, parseConfig } from './config/load.js';
import type { DoorbellConfig } from './config/schema.js';
import { deviceIdFor, identityPath, startDoorbell } from './root.js';
import { FIRMWARE_VERSION } from './version.js';

const USAGE = `usage: doorbell <command> [options]

commands:
  run        run the doorbell daemon
  identity   print this doorbell's id and public key (creates the identity on first use)

options:
  --config FILE      JSON configuration (see docs/architecture.md); defaults apply without one
  --broker URL       MQTT broker, e.g. mqtt://127.0.0.1:1883 (overrides the file)
  --state-dir DIR    keys, counters and sockets (overrides the file)
  --hal sim|linux    hardware backend (overrides the file)
  --device-id ID     device id (overrides the file)
  -h, --help         this help
  --version          print the firmware version`;

const OPTIONS = {
  config: { type: 'string' },
  broker: { type: 'string' },
  'state-dir': { type: 'string' },
  hal: { type: 'string' },
  'device-id': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`doorbell: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${FIRMWARE_VERSION}\n`);
    return 0;
  }
  const command = positionals[0];
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (positionals.length > 1) {
    process.stderr.write(`doorbell: unexpected argument '${positionals[1]}'\n\n${USAGE}\n`);
    return 2;
  }
  const overrides: ConfigOverrides = {
    broker: values.broker,
    stateDir: values['state-dir'],
    hal: values.hal,
    deviceId: values['device-id'],
  };
  let config: DoorbellConfig;
  try {
    config = values.config
      ? await loadConfigFile(values.config, overrides)
      : parseConfig({}, 'defaults and flags', overrides);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`doorbell: ${err.message}\nnothing was started.\n`);
      return 78; // EX_CONFIG
    }
    throw err;
  }
  switch (command) {
    case 'run':
      return run(config);
    case 'identity':
      return identity(config);
    default:
      process.stderr.write(`doorbell: unknown command '${command}'\n\n${USAGE}\n`);
      return 2;
  }
}

async function identity(config: DoorbellConfig): Promise<number> {
  const { loadOrCreateSigningKey } = await import('../proto/index.js');
  const { key } = await loadOrCreateSigningKey(identityPath(config.stateDir));
  process.stdout.write(
    `device id:   ${deviceIdFor(config, key)}\nkey id:      ${key.keyId}\npublic key:  ${publicKeyToText(key)}\n`,
  );
  return 0;
}

async function run(config: DoorbellConfig): Promise<number> {
  const logger = createLogger({ level: config.log.level, name: 'doorbell' });
  const running = await startDoorbell(config, { logger });
  logger.info(
    { deviceId: running.deviceId, broker: config.broker.url, simSocket: running.simSocket },
    'running',
  );
  return new Promise((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      logger.info({ signal }, 'shutting down');
      running.stop().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`doorbell: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
