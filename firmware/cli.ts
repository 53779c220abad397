#!/usr/bin/env node
import { createInterface } from 'node:readline/promises';
import { lowerBackgroundThreads } from '../common/background-threads.js';
import { CliUsageError, parseCli, unknownWord, versionLine, wantsVersion } from '../common/cli-args.js';
import { createLogger, type LogFormat, parseLogFormat } from '../common/logger.js';
import { createSdNotifier } from '../common/sd-notify.js';
import { HalError } from '../hal/errors.js';
import { fingerprintOf, formatPairingCode, loadOrCreateSigningKey, publicKeyToText } from '../proto/index.js';
import { certificateIdentityProblem } from './config/cert-identity.js';
import { ConfigError, type ConfigOverrides, loadConfigFile, parseConfig } from './config/load.js';
import type { DoorbellConfig } from './config/schema.js';
import { runningDaemonPid, wipeState } from './factory-reset.js';
import { deviceIdFor, identityPath, type RunningDoorbell, simSocketPath, startDoorbell } from './root.js';
import { runSimAction, SIM_ACTIONS, type SimAction, SimNotRunningError } from './sim-cli.js';
import { loadOrCreatePairingSecret } from './trust/pairing-secret.js';
import { RESTART_EXIT_CODE } from './update/agent.js';

const USAGE = `usage: doorbell <command> [options]

commands:
  run            run the doorbell daemon
  identity       print this doorbell's id, key fingerprint and pairing code, as text and
                 as a QR code (creates the identity on first use); keep the code private
  factory-reset  wipe keys, enrolled owners, counters and stored clips (asks first)
  sim press|hold|bounce|state
                 drive the simulated board of a running \`doorbell run --hal sim\` (same
                 --state-dir or --config): press (--ms, default 100), hold (--ms, default
                 6000: opens pairing), bounce (--edges, default 6, --spacing-ms, default 2)

options:
  --config FILE      JSON configuration (comments allowed); doorbell.example.json in the
                     source is a complete annotated one. Defaults apply without one
  --broker URL       MQTT broker, e.g. mqtt://127.0.0.1:1883 (overrides the file)
  --state-dir DIR    keys, counters and sockets (overrides the file)
  --hal sim|linux    hardware backend (overrides the file)
  --device-id ID     device id (overrides the file)
  -h, --help         this help
  -V, --version      print the firmware version
  --yes              factory-reset: do not ask (for scripts)
  --no-qr            identity: text only
  --log-format F     run: pretty (readable lines), json, or auto (default: pretty on a
                     terminal, JSON otherwise, e.g. under systemd); also DOORBELL_LOG_FORMAT`;

const OPTIONS = {
  config: { type: 'string' },
  broker: { type: 'string' },
  'state-dir': { type: 'string' },
  hal: { type: 'string' },
  'device-id': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  yes: { type: 'boolean' },
  'no-qr': { type: 'boolean' },
  'log-format': { type: 'string' },
  ms: { type: 'string' },
  edges: { type: 'string' },
  'spacing-ms': { type: 'string' },
} as const;

const COMMANDS = ['run', 'identity', 'factory-reset', 'sim'] as const;

async function main(argv: string[]): Promise<number> {
  if (wantsVersion(argv)) {
    process.stdout.write(versionLine('doorbell'));
    return 0;
  }
  let parsed: ReturnType<typeof parseCli<typeof OPTIONS>>;
  try {
    parsed = parseCli('doorbell', argv, OPTIONS);
    const command = parsed.positionals[0];
    if (!parsed.values.help && command !== undefined) {
      if (!(COMMANDS as readonly string[]).includes(command))
        throw unknownWord('doorbell', 'command', command, COMMANDS);
      const words = command === 'sim' ? 2 : 1;
      if (command === 'sim') {
        const action = parsed.positionals[1];
        if (action === undefined)
          throw new CliUsageError('doorbell', `sim needs an action: ${SIM_ACTIONS.join(', ')}`);
        if (!(SIM_ACTIONS as readonly string[]).includes(action))
          throw unknownWord('doorbell', 'sim action', action, SIM_ACTIONS);
      }
      if (parsed.positionals.length > words)
        throw new CliUsageError('doorbell', `unexpected argument '${parsed.positionals[words]}'`);
    }
  } catch (err) {
    if (!(err instanceof CliUsageError)) throw err;
    process.stderr.write(err.line());
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  let logFormat: LogFormat | undefined;
  try {
    logFormat = values['log-format'] === undefined ? undefined : parseLogFormat(values['log-format']);
  } catch (err) {
    process.stderr.write(new CliUsageError('doorbell', (err as Error).message).line());
    return 2;
  }
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
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
    case 'run': {
      const problem = await certificateIdentityProblem(config);
      if (problem !== undefined) {
        process.stderr.write(`doorbell: ${problem}\nnothing was started.\n`);
        return 78; // EX_CONFIG
      }
      return run(config, logFormat);
    }
    case 'identity':
      return identity(config, values['no-qr'] !== true);
    case 'factory-reset':
      return factoryReset(config, values.yes === true);
    case 'sim':
      return sim(config, positionals[1] as SimAction, values);
    default:
      return 2; // unreachable: checked above
  }
}

async function sim(
  config: DoorbellConfig,
  action: SimAction,
  values: { ms?: string | undefined; edges?: string | undefined; 'spacing-ms'?: string | undefined },
): Promise<number> {
  const int = (name: string, text: string | undefined, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new CliUsageError(
        'doorbell',
        `--${name} must be an integer from ${min} to ${max}, got '${text.slice(0, 20)}'`,
      );
    }
    return n;
  };
  let line: string;
  try {
    line = await runSimAction(simSocketPath(config), {
      action,
      ms: int('ms', values.ms, 1, 60_000),
      edges: int('edges', values.edges, 1, 1_000),
      spacingMs: int('spacing-ms', values['spacing-ms'], 1, 1_000),
    });
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(err.line());
      return 2;
    }
    if (err instanceof SimNotRunningError || err instanceof HalError) {
      process.stderr.write(`doorbell: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  process.stdout.write(`${line}\n`);
  return 0;
}

async function identity(config: DoorbellConfig, qr: boolean): Promise<number> {
  const { key } = await loadOrCreateSigningKey(identityPath(config.stateDir));
  const secret = await loadOrCreatePairingSecret(config.stateDir);
  const deviceId = deviceIdFor(config, key);
  const fingerprint = fingerprintOf(key.publicRaw);
  const code = formatPairingCode({ deviceId, fingerprint, secret });
  process.stdout.write(
    `device id:     ${deviceId}\n` +
      `key id:        ${key.keyId}\n` +
      `fingerprint:   ${fingerprint}\n` +
      `public key:    ${publicKeyToText(key)}\n` +
      `pairing code:  ${code}\n`,
  );
  if (qr) {
    const { default: qrcode } = await import('qrcode-terminal');
    qrcode.generate(code, { small: true }, (text) => process.stdout.write(`\n${text}\n`));
  }
  process.stdout.write(
    '\nTo pair: hold the doorbell button for 5 s (the LED double-blinks while the window is open),\n' +
      'then run `doorbell-hub pair --code <pairing code>` within 3 minutes. Anyone with this code\n' +
      'and access to the button can pair: keep it private, like a key.\n',
  );
  return 0;
}

async function factoryReset(config: DoorbellConfig, yes: boolean): Promise<number> {
  const pid = await runningDaemonPid(config.stateDir);
  if (pid !== undefined) {
    process.stderr.write(
      `doorbell: the daemon is running (pid ${pid}); stop it first (systemctl stop doorbell)\n`,
    );
    return 1;
  }
  process.stdout.write(
    `This wipes the doorbell's identity, every enrolled owner and key, counters, settings,\n` +
      `undelivered events and stored clips in ${config.stateDir}. It cannot be undone.\n`,
  );
  if (!yes) {
    if (!process.stdin.isTTY) {
      process.stderr.write('doorbell: refusing without a terminal to confirm on; pass --yes to confirm\n');
      return 2;
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question('Type "reset" to confirm: ');
    rl.close();
    if (answer.trim() !== 'reset') {
      process.stdout.write('nothing was changed.\n');
      return 1;
    }
  }
  const removed = await wipeState(config.stateDir);
  process.stdout.write(
    `factory reset done; removed: ${removed.length > 0 ? removed.join(', ') : 'nothing (already clean)'}\n`,
  );
  return 0;
}

async function run(config: DoorbellConfig, format: LogFormat | undefined): Promise<number> {
  const logger = createLogger({ level: config.log.level, name: 'doorbell', format });
  let running: RunningDoorbell;
  let resetting: Promise<void> | undefined;
  // An update switched slots or a trial rolled back: stop cleanly, exit 75 (systemd restarts us).
  let exitFor: ((code: number, why: string) => void) | undefined;
  let restartAsked: string | undefined;
  const start = async (): Promise<RunningDoorbell> => {
    const r = await startDoorbell(config, {
      logger,
      ...(process.env.DOORBELL_ROOT ? { doorbellRoot: process.env.DOORBELL_ROOT } : {}),
      onRestart: (reason) => {
        restartAsked ??= reason;
        exitFor?.(RESTART_EXIT_CODE, reason);
      },
      onFactoryResetHold: () => {
        resetting ??= (async () => {
          await r
            .announceFactoryReset()
            .catch((err: unknown) => logger.error({ err }, 'reset not announced'));
          await r.stop();
          const removed = await wipeState(config.stateDir);
          logger.warn({ removed }, 'factory reset by button hold: starting afresh');
          running = await start();
        })().finally(() => {
          resetting = undefined;
        });
      },
    });
    logger.info({ deviceId: r.deviceId, broker: config.broker.url, simSocket: r.simSocket }, 'running');
    return r;
  };
  running = await start();
  // V8's compiler and GC helpers must not compete with the press path (see docs/architecture.md).
  const threads = lowerBackgroundThreads(logger);
  // systemd (Type=notify): ready once the ring path is up, not when the broker
  // is reached, so that a broker outage at boot is not a failed start.
  const notify = createSdNotifier({ onError: (err) => logger.warn({ err }, 'sd_notify failed') });
  await notify.ready('running');
  const stopWatchdog = notify.startWatchdog();
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
      stopWatchdog();
      threads.stop();
      void notify.stopping();
      Promise.resolve(resetting)
        .then(() => running.stop())
        .then(
          () => resolve(0),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            resolve(1);
          },
        );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    exitFor = (code, why) => {
      exitFor = undefined;
      logger.warn({ code, why }, 'stopping to restart');
      stopWatchdog();
      void notify.stopping();
      Promise.resolve(resetting)
        .then(() => running.stop())
        .then(
          () => resolve(code),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            resolve(code);
          },
        );
    };
    if (restartAsked !== undefined) exitFor(RESTART_EXIT_CODE, restartAsked);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`doorbell: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
