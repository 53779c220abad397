#!/usr/bin/env node
import { writeFile } from 'node:fs/promises';
import { CliUsageError, parseCli, unknownWord, versionLine, wantsVersion } from '../common/cli-args.js';
import { createLogger, type Logger, type LogLevel } from '../common/logger.js';
import { doorbell, publicKeyFromText, publicKeyToText } from '../proto/index.js';
import { COMMANDS, fractionFlag, hexFlag, intFlag, required, USAGE, UsageError } from './cli-args.js';
import type { LinkFaults } from './emulator/link-shaper.js';
import { type EmulatedStack, startEmulatedStack } from './emulator/stack.js';
import { listSerialPorts } from './port-list.js';
import { RigDriver } from './protocol/driver.js';
import { openSerialTransport } from './serial-transport.js';
import { HubWatch } from './suites/hub-watch.js';
import { formatReport, summarize } from './suites/report.js';
import { linkErrorReport, runSuite, SUITE_NAMES, type SuiteName } from './suites/runner.js';

const OPTIONS = {
  port: { type: 'string' },
  ms: { type: 'string' },
  vid: { type: 'string' },
  pid: { type: 'string' },
  broker: { type: 'string' },
  'device-id': { type: 'string' },
  'device-key': { type: 'string' },
  emulate: { type: 'boolean' },
  suite: { type: 'string' },
  json: { type: 'string' },
  'latency-ms': { type: 'string' },
  'jitter-ms': { type: 'string' },
  'drop-rate': { type: 'string' },
  'corrupt-rate': { type: 'string' },
  'delay-rate': { type: 'string' },
  'delay-ms': { type: 'string' },
  seed: { type: 'string' },
  presses: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseCli<typeof OPTIONS>>['values'];
const out = (s: string) => process.stdout.write(s);
const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

async function main(argv: string[]): Promise<number> {
  if (wantsVersion(argv)) {
    out(versionLine('doorbell-rig'));
    return 0;
  }
  const { values, positionals } = parseCli('doorbell-rig', argv, OPTIONS);
  const [command, ...rest] = positionals;
  if (values.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined) throw new UsageError(`a command is required: one of ${COMMANDS.join(', ')}`);
  if (!(COMMANDS as readonly string[]).includes(command))
    throw unknownWord('doorbell-rig', 'command', command, COMMANDS);
  const level = (values['log-level'] ?? 'error') as LogLevel;
  if (!LEVELS.includes(level))
    throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}, got '${level}'`);
  const logger = createLogger({ level, name: 'doorbell-rig' });
  const extra = (max: number) => {
    if (rest.length > max) throw new UsageError(`unexpected argument '${rest[max]}'`);
  };
  switch (command) {
    case 'list':
      extra(0);
      return list(values);
    case 'press': {
      extra(0);
      const ms = intFlag('ms', required('ms', values.ms), 1, 60_000) ?? 0;
      return withDriver(required('port', values.port), logger, (d) => d.press(ms), `pressed for ${ms} ms`);
    }
    case 'power': {
      extra(1);
      const state = rest[0];
      if (state !== 'on' && state !== 'off')
        throw new UsageError(`power takes 'on' or 'off', got '${state ?? ''}'`);
      const port = required('port', values.port);
      return withDriver(port, logger, (d) => d.power(state === 'on'), `power ${state}`);
    }
    case 'emulate':
      extra(0);
      return emulate(values, logger);
    case 'run':
      extra(0);
      return run(values, logger);
    default:
      throw unknownWord('doorbell-rig', 'command', command, COMMANDS);
  }
}

async function list(values: Values): Promise<number> {
  const vid = hexFlag('vid', values.vid, '2e8a');
  const pid = hexFlag('pid', values.pid, '000a');
  const { ports, source } = await listSerialPorts();
  let found = 0;
  for (const p of ports) {
    const v = p.vendorId?.toLowerCase();
    const d = p.productId?.toLowerCase();
    if (v === vid && d === pid) {
      found++;
      out(`rig   ${p.path}  ${v}:${d}  ${p.manufacturer ?? ''} ${p.serialNumber ?? ''}\n`);
    } else {
      const why =
        v === undefined ? 'no USB ids (not a USB device)' : `USB ${v}:${d ?? '?'} is not ${vid}:${pid}`;
      out(`skip  ${p.path}  ${why}\n`);
    }
  }
  out(
    `${found} rig(s) found among ${ports.length} serial port(s) (looking for ${vid}:${pid}; ports from ${source})\n`,
  );
  return found > 0 ? 0 : 1;
}

async function withDriver(
  port: string,
  logger: Logger,
  action: (d: RigDriver) => Promise<void>,
  done: string,
) {
  const driver = new RigDriver(await openSerialTransport({ path: port }), { logger, keepaliveMs: 0 });
  try {
    await driver.open();
    await action(driver);
    out(`${done}\n`);
    return 0;
  } finally {
    await driver.close();
  }
}

function faultsOf(values: Values): LinkFaults {
  const f: LinkFaults = {};
  const set = (k: keyof LinkFaults, v: number | undefined) => {
    if (v !== undefined) f[k] = v;
  };
  set('latencyMs', intFlag('latency-ms', values['latency-ms'], 0, 60_000));
  set('jitterMs', intFlag('jitter-ms', values['jitter-ms'], 0, 60_000));
  set('dropRate', fractionFlag('drop-rate', values['drop-rate']));
  set('corruptRate', fractionFlag('corrupt-rate', values['corrupt-rate']));
  set('delayRate', fractionFlag('delay-rate', values['delay-rate']));
  set('delayMs', intFlag('delay-ms', values['delay-ms'], 0, 60_000));
  set('seed', intFlag('seed', values.seed, 0, 0xffff_ffff));
  return f;
}

function startStack(values: Values, logger: Logger, camera: boolean): Promise<EmulatedStack> {
  const faults = faultsOf(values);
  return startEmulatedStack({
    logger,
    faults,
    camera,
    onSpawn: (what, pid) => process.stderr.write(`doorbell-rig: started ${what} pid ${pid}\n`),
    ...(values.broker ? { brokerUrl: values.broker } : {}),
  });
}

async function emulate(values: Values, logger: Logger): Promise<number> {
  const stack = await startStack(values, logger, true);
  const key = publicKeyToText(stack.deviceKey);
  out(
    `rig emulator on ${stack.hostPath}\nbroker ${stack.brokerUrl}\ndevice ${stack.deviceId}\ndevice key ${key}\n` +
      `try: npm run rig -- run --port ${stack.hostPath} --suite full --broker ${stack.brokerUrl} ` +
      `--device-id ${stack.deviceId} --device-key ${key}\n` +
      'Ctrl-C stops everything.\n',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stack.stop();
  return 0;
}

async function run(values: Values, logger: Logger): Promise<number> {
  const suite = (values.suite ?? 'smoke') as SuiteName;
  if (!SUITE_NAMES.includes(suite)) throw new UsageError(`--suite must be smoke or full, got '${suite}'`);
  if ((values.emulate ?? false) === (values.port !== undefined))
    throw new UsageError('run needs exactly one of --port PATH and --emulate');
  const latencyPresses = intFlag('presses', values.presses, 1, 1000) ?? 10;
  const deviceKey = values['device-key'];
  if (deviceKey !== undefined) {
    try {
      publicKeyFromText(deviceKey);
    } catch {
      throw new UsageError(`--device-key must be an ed25519:... public key, got '${deviceKey}'`);
    }
  }
  let stack: EmulatedStack | undefined;
  let hub: HubWatch | undefined;
  let driver: RigDriver | undefined;
  try {
    // The smoke suite needs no camera: its board starts without one.
    stack = values.emulate ? await startStack(values, logger, suite === 'full') : undefined;
    const port = stack?.hostPath ?? values.port ?? '';
    const brokerUrl = stack?.brokerUrl ?? values.broker;
    const deviceId = stack?.deviceId ?? values['device-id'];
    const key = stack?.deviceKey ?? (deviceKey ? publicKeyFromText(deviceKey) : undefined);
    if (brokerUrl && deviceId && key) {
      hub = new HubWatch(brokerUrl, deviceId, key, logger);
      await hub.waitFor(
        (e) => e.channel === 'status' && e.event.status?.state === doorbell.v1.Status.State.ONLINE,
        20_000,
        `ONLINE status from ${deviceId}`,
      );
    }
    driver = new RigDriver(await openSerialTransport({ path: port }), { logger });
    const started = performance.now();
    let report: ReturnType<typeof summarize>;
    try {
      await driver.open();
      report = await runSuite({ suite, driver, port, latencyPresses, ...(hub ? { hub } : {}) });
    } catch (err) {
      const detail = `the rig did not answer the handshake: ${err instanceof Error ? err.message : String(err)}`;
      report = summarize({
        suite,
        port,
        startedAt: new Date().toISOString(),
        durationMs: performance.now() - started,
        checks: [{ name: 'handshake', status: 'fail', durationMs: performance.now() - started, detail }],
        linkErrors: linkErrorReport(driver),
      });
    }
    out(formatReport(report));
    if (values.json) await writeFile(values.json, `${JSON.stringify(report, null, 2)}\n`);
    return report.ok ? 0 : 1;
  } finally {
    await driver?.close().catch(() => undefined);
    await hub?.stop().catch(() => undefined);
    await stack?.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof CliUsageError) {
      process.stderr.write(err.line());
      process.exit(2);
    }
    process.stderr.write(`doorbell-rig: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
