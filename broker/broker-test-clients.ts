// Clients for the broker tests: the Debian `mosquitto_pub`/`mosquitto_sub` as
// independent oracles, and mqtt.js clients that record what they receive.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type ISubscriptionGrant, type MqttClient } from 'mqtt';

export interface TlsFiles {
  ca: string;
  cert?: string;
  key?: string;
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `mosquitto_pub` or `mosquitto_sub` to completion (killed after `timeoutMs`). */
export function runMosquittoClient(
  command: 'mosquitto_pub' | 'mosquitto_sub',
  args: string[],
  timeoutMs = 20_000,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Arguments shared by `mosquitto_pub`/`mosquitto_sub`: MQTT 5 over TLS to 127.0.0.1:port. */
export function connectArgs(port: number, tls: TlsFiles, clientId: string): string[] {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', '-i', clientId, '--cafile', tls.ca];
  if (tls.cert) args.push('--cert', tls.cert);
  if (tls.key) args.push('--key', tls.key);
  return args;
}

/** Publishes one QoS 1 message with `mosquitto_pub -d`; the debug output shows the PUBACK reason code. */
export function mosquittoPub(
  port: number,
  tls: TlsFiles,
  clientId: string,
  topic: string,
  message: string,
  extra: string[] = [],
): Promise<CommandResult> {
  return runMosquittoClient('mosquitto_pub', [
    ...connectArgs(port, tls, clientId),
    ...extra,
    '-d',
    '-q',
    '1',
    '-t',
    topic,
    '-m',
    message,
  ]);
}

/** Like mosquittoPub, with the payload read from a file (`-f`): payloads beyond an argument's size limit. */
export function mosquittoPubFile(
  port: number,
  tls: TlsFiles,
  clientId: string,
  topic: string,
  file: string,
): Promise<CommandResult> {
  return runMosquittoClient('mosquitto_pub', [
    ...connectArgs(port, tls, clientId),
    '-d',
    '-q',
    '1',
    '-t',
    topic,
    '-f',
    file,
  ]);
}

/** The PUBACK reason code printed by `mosquitto_pub -d`, e.g. 0, 16 (no subscribers) or 135 (not authorized). */
export function pubackReason(result: CommandResult): number | undefined {
  const match = /received PUBACK \(Mid: \d+, RC:(\d+)\)/.exec(result.stdout);
  return match ? Number(match[1]) : undefined;
}

export function mqttOptions(tls: TlsFiles, clientId: string): IClientOptions {
  return {
    protocolVersion: 5,
    clientId,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ca: readFileSync(tls.ca),
    cert: tls.cert ? readFileSync(tls.cert) : undefined,
    key: tls.key ? readFileSync(tls.key) : undefined,
  };
}

/**
 * Connects once with mqtt.js: resolves with the client on CONNACK, or with the
 * error (or `closed`) when the broker refuses or drops the connection first.
 */
export function tryConnect(
  url: string,
  options: IClientOptions,
  /** Called with the client before it connects, e.g. to listen for messages a resumed session delivers at once. */
  setup?: (client: MqttClient) => void,
): Promise<{ client: MqttClient; error?: undefined } | { client?: undefined; error: Error }> {
  return new Promise((resolve) => {
    const client = connect(url, options);
    setup?.(client);
    const onConnect = (): void => {
      client.off('error', fail);
      client.off('close', onClose);
      resolve({ client });
    };
    const onClose = (): void => fail(new Error('connection closed before CONNACK'));
    function fail(error: Error): void {
      client.removeAllListeners();
      client.on('error', () => {});
      client.end(true);
      // mqtt.js 5 leaves its CONNACK timer running when the connection fails
      // before CONNACK; it would hold the test process open until it fires.
      clearTimeout((client as unknown as { connackTimer?: NodeJS.Timeout }).connackTimer);
      resolve({ error });
    }
    client.once('connect', onConnect);
    client.once('error', fail);
    client.once('close', onClose);
  });
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

/** An mqtt.js client that records every message and can wait for one. */
export class Recorder {
  readonly received: Received[] = [];
  /** Whether the broker's session was resumed (CONNACK session present). */
  sessionPresent = false;
  /** Set once the connection has closed, e.g. because another client took the client id over. */
  closed = false;
  private readonly waiters = new Set<() => void>();
  private readonly closeWaiters = new Set<() => void>();

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.received.push({ topic, payload: payload.toString(), retain: packet.retain });
      for (const w of this.waiters) w();
    });
    client.on('connect', (connack) => {
      this.sessionPresent = connack.sessionPresent;
    });
    // A connection the broker ends later (a takeover, a revocation) is recorded, not thrown.
    client.on('error', () => {});
    client.on('close', () => {
      this.closed = true;
      for (const w of this.closeWaiters) w();
    });
  }

  /**
   * Connects with `mqttOptions(tls, clientId)` and `overrides` (e.g. `clean: false` and a
   * session expiry to resume a persistent session); messages are recorded from the first packet.
   */
  static async connect(
    url: string,
    tls: TlsFiles,
    clientId: string,
    overrides: Partial<IClientOptions> = {},
  ): Promise<Recorder> {
    let recorder: Recorder | undefined;
    const result = await tryConnect(url, { ...mqttOptions(tls, clientId), ...overrides }, (client) => {
      recorder = new Recorder(client);
    });
    if (!result.client || !recorder) {
      throw new Error(`${clientId} could not connect: ${result.error?.message ?? 'no client'}`);
    }
    return recorder;
  }

  /** Resolves when the connection closes; rejects after `timeoutMs`. */
  waitClosed(what: string, timeoutMs = 20_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        this.closeWaiters.delete(waiter);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.closeWaiters.delete(waiter);
        reject(new Error(`timed out waiting for ${what} to be disconnected`));
      }, timeoutMs);
      this.closeWaiters.add(waiter);
    });
  }

  subscribe(topics: string[]): Promise<ISubscriptionGrant[]> {
    return this.client.subscribeAsync(topics, { qos: 1 });
  }

  /** Resolves with the first received message matching `match`; rejects after `timeoutMs`. */
  waitFor(match: (m: Received) => boolean, what: string, timeoutMs = 20_000): Promise<Received> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.received.find(match);
        if (!found) return false;
        this.waiters.delete(waiter);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const waiter = (): void => {
        check();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.received)}`));
      }, timeoutMs);
      this.waiters.add(waiter);
      check();
    });
  }

  topics(): string[] {
    return this.received.map((m) => m.topic);
  }

  async end(): Promise<void> {
    await this.client.endAsync(true);
  }
}
