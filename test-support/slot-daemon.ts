import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { boardPaths } from '../board/board-files.js';
import { currentLink } from '../board/slots.js';
import { doorbell, loadSigningKey, topicsFor } from '../proto/index.js';

/** The node options the board's unit starts the daemon with: what stands between the node binary and the script. */
export function unitNodeOptions(root: string): string[] {
  const unit = readFileSync(boardPaths(root).unit, 'utf8');
  const [, ...args] = (/^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '').split(' ');
  const script = args.findIndex((a) => a.endsWith('/doorbell.js'));
  if (script < 0) throw new Error(`the unit's ExecStart does not run doorbell.js: ${unit.slice(0, 200)}`);
  return args.slice(0, script);
}

/** A daemon started from a flashed slot. */
export interface SlotDaemon {
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM, SIGKILL after 5 s; resolves when it has exited. Safe to call twice. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `<root>/slots/current/doorbell.js run` with the sim HAL, as the unit
 * would (the same node options, config file, state directory and entry point).
 */
export function startSlotDaemon(root: string, brokerUrl: string, deviceId: string): SlotDaemon {
  const child = spawn(
    process.execPath,
    [
      ...unitNodeOptions(root),
      join(currentLink(root), 'doorbell.js'),
      'run',
      '--config',
      join(root, 'etc', 'doorbell', 'config.json'),
      '--state-dir',
      join(root, 'state'),
      '--hal',
      'sim',
      '--broker',
      brokerUrl,
      '--device-id',
      deviceId,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOORBELL_LOG_LEVEL: 'warn' } },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** An ONLINE status: its envelope decoded and its device signature verified with the key in `stateDir`. */
export async function verifiedOnlineStatus(payload: Buffer, stateDir: string): Promise<boolean> {
  const envelope = doorbell.v1.Envelope.decode(payload);
  const event = doorbell.v1.Event.decode(envelope.body);
  if (event.status?.state !== doorbell.v1.Status.State.ONLINE) return false;
  const key = await loadSigningKey(join(stateDir, 'identity.pem'));
  return envelope.keyId === key.keyId && verify(null, envelope.body, key.publicKey, envelope.signature);
}

/**
 * Waits until `mosquitto_sub` (an independent client) reads a retained,
 * signed ONLINE status of `deviceId`: each try is a fresh subscription with
 * `--retained-only`, so only what the broker keeps counts. Resolves with the payload.
 */
export async function waitForRetainedOnline(
  port: number,
  deviceId: string,
  stateDir: string,
  timeoutMs = 15_000,
): Promise<Buffer> {
  const topic = topicsFor(deviceId).status;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const hex = await new Promise<string>((resolve) => {
      execFile(
        'mosquitto_sub',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-V',
          'mqttv5',
          '-t',
          topic,
          '--retained-only',
          '-C',
          '1',
          '-W',
          '1',
          '-F',
          '%x',
        ],
        { timeout: 5000 },
        (err, stdout, stderr) => {
          last = `${err?.message ?? ''} ${stderr}`;
          resolve(stdout.trim());
        },
      );
    });
    if (hex) {
      const payload = Buffer.from(hex, 'hex');
      if (await verifiedOnlineStatus(payload, stateDir).catch(() => false)) return payload;
      last = 'a retained status that is not a signed ONLINE one';
    }
    await sleep(50);
  }
  throw new Error(`no retained signed ONLINE status on ${topic} within ${timeoutMs} ms (${last.trim()})`);
}
