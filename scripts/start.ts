// The `npm start` demo: a local Mosquitto, a simulated doorbell (the real
// daemon, as a child process) and the hub, driven from the keyboard.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type RunningBroker, startMosquitto } from '../broker/local-mosquitto.js';
import { lowerBackgroundThreads } from '../common/background-threads.js';
import { createLogger } from '../common/logger.js';
import { MqttConnection } from '../common/mqtt-connection.js';
import { identityPath } from '../firmware/root.js';
import { loadOrCreatePairingSecret } from '../firmware/trust/pairing-secret.js';
import { connectWires, type WireClient } from '../hal/index.js';
import { Commander } from '../hub/commander.js';
import { EventWatcher, type VerifiedEvent } from '../hub/event-watcher.js';
import { describeEvent } from '../hub/format.js';
import { hubCounterPath, ownerCounterPath, ownerKeyPath } from '../hub/hub-state.js';
import { PairingRefusedError, pairDevice } from '../hub/pairing.js';
import { CounterStore, doorbell, fingerprintOf, loadOrCreateSigningKey } from '../proto/index.js';
import { prepareDemo } from './demo/demo-setup.js';

const ROOT = resolve(import.meta.dirname, '..');
const out = (line: string): boolean => process.stdout.write(`${line}\n`);

const { values } = parseArgs({
  options: {
    broker: { type: 'string' },
    // DOORBELL_DEMO_STATE_DIR: where `npm start` keeps the demo's keys and clips without flags.
    'state-dir': {
      type: 'string',
      default: process.env.DOORBELL_DEMO_STATE_DIR ?? resolve(ROOT, '.state/demo'),
    },
  },
  strict: true,
});

let broker: RunningBroker | undefined;
let daemon: ChildProcess | undefined;
let hub: MqttConnection | undefined;
let wires: WireClient | undefined;

async function main(): Promise<void> {
  if (!values.broker) {
    broker = await startMosquitto();
  }
  const brokerUrl = values.broker ?? broker?.url ?? '';
  const demo = await prepareDemo(values['state-dir'], brokerUrl);
  const log = createWriteStream(demo.logPath, { flags: 'a' });
  daemon = spawn(
    process.execPath,
    ['--import', 'tsx', resolve(ROOT, 'firmware/cli.ts'), 'run', '--config', demo.configPath],
    {
      stdio: ['ignore', 'inherit', 'pipe'],
      env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '8' },
    },
  );
  daemon.stderr?.pipe(log);
  daemon.once('exit', (code, signal) => {
    if (!quitting) {
      out(`the doorbell daemon exited (${signal ?? code}); see ${demo.logPath}`);
      void quit(1);
    }
  });
  // The daemon serves its sim wires once it is up: connect as soon as they answer.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      wires = await connectWires(demo.socketPath);
      break;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`the doorbell did not start (${(err as Error).message}); see ${demo.logPath}`);
      await sleep(50);
    }
  }

  const logger = createLogger({ name: 'hub', level: 'warn' });
  const watcher = new EventWatcher(new Map([[demo.deviceId, demo.deviceKey]]), logger);
  hub = new MqttConnection({
    url: brokerUrl,
    clientId: `doorbell-hub-demo-${process.pid}`,
    logger,
    subscriptions: EventWatcher.subscriptions,
  });
  hub.on('message', (topic, payload, packet) => watcher.handle(topic, payload, packet.retain));
  const counters = await CounterStore.open(hubCounterPath(demo.hubStateDir));
  const commander = new Commander({ connection: hub, watcher, key: demo.hubKey, counters, logger });

  // The chime notice (from the sim wire) and the verified event (from the hub)
  // can arrive in either order; the latency is printed once both are in.
  let chimeOnNs: bigint | undefined;
  let verifiedNs: bigint | undefined;
  const reportLatency = (): void => {
    if (chimeOnNs === undefined || verifiedNs === undefined) return;
    out(
      `  [hub]   verified at the hub ${(Number(verifiedNs - chimeOnNs) / 1e6).toFixed(2)} ms after the chime went on`,
    );
    chimeOnNs = undefined;
    verifiedNs = undefined;
  };
  wires.onChime((on, atNs) => {
    out(on ? '  [chime] ON  (the sim chime line went high)' : '  [chime] off');
    if (on && pressPending) {
      pressPending = false;
      chimeOnNs = atNs;
      reportLatency();
    }
  });
  watcher.on('event', (e: VerifiedEvent) => {
    out(`  [hub]   ${describeEvent(e)}`);
    if (e.event.kind === 'buttonPressed') {
      verifiedNs = process.hrtime.bigint();
      reportLatency();
    }
  });
  watcher.on('rejected', (r) => out(`  [hub]   REJECTED ${r.topic}: ${r.kind} ${r.reason}`));
  hub.start();
  // As `doorbell-hub watch` does, so the latency shown is the product's (see docs/architecture.md).
  lowerBackgroundThreads(logger);

  out('');
  out('Open Doorbell demo');
  out(`  broker:   ${brokerUrl}${broker ? ' (a Mosquitto started for this demo)' : ''}`);
  out(
    `  doorbell: ${demo.deviceId}, sim hardware, key ${demo.deviceKey.keyId}; log in ${relative(process.cwd(), demo.logPath)}`,
  );
  out(`  hub:      key ${demo.hubKey.keyId}, state in ${relative(process.cwd(), demo.hubStateDir)}`);
  out('');
  out('Keys:  p or space  press the button        b  a bouncy press (50 edges in 20 ms: still one ring)');
  out('       h           hold 5 s (opens the pairing window on an unpaired doorbell)');
  out('       a           pair: the hub proves it has the pairing code and enrols the owner');
  out('       r           ring from the hub (signed command)');
  out('       s           ask for status          q  quit');
  out('');
  out('A press also records a clip (3 s before to 3 s after), encrypted to the demo owner:');
  out(`  ls ${relative(process.cwd(), demo.clipsDir)}`);
  out(`  age -d -i ${relative(process.cwd(), demo.ownerAgeIdentity)} -o clip.mp4 <file>.age`);
  out('');
  out('In another terminal, the hub CLI sees the same events:');
  out(
    `  npm run doorbell-hub -- watch --broker ${brokerUrl} --state-dir ${relative(process.cwd(), demo.hubStateDir)}`,
  );
  out('');

  const act = async (key: string): Promise<void> => {
    const w = wires;
    if (!w) return;
    switch (key) {
      case 'p':
      case ' ':
        pressPending = true;
        out('> press');
        await w.press(120);
        return;
      case 'b':
        pressPending = true;
        out('> bouncy press: 50 edges, 0.4 ms apart, then held');
        await w.bounce(50, 0.4, 120);
        return;
      case 'h':
        out('> holding the button for 5.5 s ...');
        await w.hold(5_500);
        return;
      case 'a': {
        out('> hub: pair with the pairing code (as `doorbell-hub pair --code` does)');
        const { key: deviceKey } = await loadOrCreateSigningKey(identityPath(demo.deviceStateDir));
        const code = {
          deviceId: demo.deviceId,
          fingerprint: fingerprintOf(deviceKey.publicRaw),
          secret: await loadOrCreatePairingSecret(demo.deviceStateDir),
        };
        const { key: owner } = await loadOrCreateSigningKey(ownerKeyPath(demo.hubStateDir));
        const ownerCounters = await CounterStore.open(ownerCounterPath(demo.hubStateDir));
        try {
          const paired = await pairDevice(
            hub as MqttConnection,
            { code, owner, ownerCounters, ownerLabel: 'demo owner', recipients: [], timeoutMs: 5_000 },
            logger,
          );
          out(`  [hub]   paired: the doorbell's key ${paired.deviceKey.keyId} matches the code; enrolled:`);
          for (const k of paired.keys.keys) {
            out(`          ${k.keyId} ${doorbell.v1.Role[k.role ?? 0]} (${k.label}, ${k.source})`);
          }
        } catch (err) {
          out(
            `  [hub]   not paired: ${(err as Error).message}${err instanceof PairingRefusedError ? ' (press h first)' : ''}`,
          );
        } finally {
          await ownerCounters.flush();
        }
        return;
      }
      case 'r':
      case 's': {
        out(key === 'r' ? '> hub: ring (signed command)' : '> hub: status');
        const { result } = await commander.send(
          demo.deviceId,
          key === 'r' ? { ringChimeTest: {} } : { getStatus: {} },
          5_000,
        );
        out(
          `  [hub]   result: ${JSON.stringify(doorbell.v1.CommandResult.toObject(result, { enums: String }))}`,
        );
        return;
      }
      case 'q':
      case '\u0003':
        await quit(0);
        return;
      default:
        return;
    }
  };
  const run = (key: string): void => {
    act(key).catch((err: unknown) => out(`  error: ${err instanceof Error ? err.message : String(err)}`));
  };

  if (process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    process.stdin.on('data', (d: Buffer) => run(d.toString().toLowerCase().slice(0, 1)));
  } else {
    // Scripted use: one key per line; end of input quits.
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => run(line.trim().toLowerCase().slice(0, 1) || 'p'));
    rl.on('close', () => {
      setTimeout(() => void quit(0), 1_500);
    });
  }
  process.on('SIGINT', () => void quit(0));
  process.on('SIGTERM', () => void quit(0));
}

let quitting = false;
/** A press was made from the keyboard and its chime notice is still to come. */
let pressPending = false;
async function quit(code: number): Promise<void> {
  if (quitting) return;
  quitting = true;
  out('stopping ...');
  if (process.stdin.isTTY) process.stdin.setRawMode(false);
  await wires?.close().catch(() => undefined);
  await hub?.stop().catch(() => undefined);
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    daemon.kill('SIGTERM');
    await Promise.race([once(daemon, 'exit'), sleep(5_000)]);
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
  }
  await broker?.stop();
  out('stopped.');
  process.exit(code);
}

main().catch(async (err: unknown) => {
  out(`npm start failed: ${err instanceof Error ? err.message : String(err)}`);
  await quit(1);
});
