import type { Logger } from '../common/logger.js';
import type { MqttConnection } from '../common/mqtt-connection.js';
import { ReplyWaiter } from '../common/reply-waiter.js';
import {
  type CounterStore,
  doorbell,
  newCorrelationId,
  type SigningKey,
  sealCommand,
  topicsFor,
} from '../proto/index.js';
import type { EventWatcher, VerifiedEvent } from './event-watcher.js';

export type CommandBody = Omit<doorbell.v1.ICommand, 'header'>;

export class CommandTimeoutError extends Error {
  override readonly name = 'CommandTimeoutError';
}

export interface SendOptions {
  /** How long the command lives (default the commander's). */
  ttlMs?: number;
  /** Told each command's correlation id before it is sent (a retry gets a new one): what follows a result on other topics carries it. */
  onCorrelationId?: (correlationId: string) => void;
}

export interface CommanderDeps {
  connection: MqttConnection;
  watcher: EventWatcher;
  key: SigningKey;
  counters: CounterStore;
  logger: Logger;
  nowMs?: () => number;
  /** Commands expire this long after they are issued (default 30 s; Administer commands at most 10 s). */
  ttlMs?: number;
  /** The device's key epoch as last seen (default 0). */
  keyEpochOf?: (deviceId: string) => number;
  /** Called with the epoch from every verified result that differs from keyEpochOf's. */
  onKeyEpoch?: (deviceId: string, keyEpoch: number) => void;
}

/**
 * Sends signed commands and pairs each with its signed result by
 * correlation id. A result that does not come in time is a
 * CommandTimeoutError that names the device, the command and the wait.
 */
export class Commander {
  private readonly pending = new ReplyWaiter<string, VerifiedEvent>({
    timeoutError: (what, _id, ms) => new CommandTimeoutError(`no result from ${what} within ${ms} ms`),
  });

  constructor(private readonly deps: CommanderDeps) {
    deps.watcher.on('event', (e) => {
      if (e.event.kind !== 'commandResult') return;
      this.pending.deliver(e.correlationId, e);
    });
  }

  /**
   * Sends one command and waits for its verified result. A STALE_EPOCH
   * refusal whose signed result names a newer epoch is retried once with it
   * (the device revoked a key since this hub last spoke to it), and a REPLAY
   * refusal that names the next acceptable counter is retried once from
   * there (the device kept a reserved mark across a crash).
   */
  async send(
    deviceId: string,
    body: CommandBody,
    timeoutMs: number,
    options: SendOptions = {},
  ): Promise<{ result: doorbell.v1.CommandResult; event: VerifiedEvent }> {
    let epoch = this.deps.keyEpochOf?.(deviceId) ?? 0;
    let answer = await this.sendOnce(deviceId, body, timeoutMs, epoch, options);
    // At most one retry for each of the two recoverable refusals.
    for (let retries = 0; retries < 2; retries += 1) {
      const { result } = answer;
      const seen = Number(result.keyEpoch ?? 0);
      if (seen !== epoch) this.deps.onKeyEpoch?.(deviceId, seen);
      if (result.errorKind === doorbell.v1.ErrorKind.STALE_EPOCH && seen !== epoch) {
        this.deps.logger.info({ deviceId, from: epoch, to: seen }, 'key epoch changed: sending again');
      } else if (result.errorKind === doorbell.v1.ErrorKind.REPLAY && Number(result.nextCounter ?? 0) > 0) {
        // The device kept a mark above our counter (it restarted after a crash): skip past it,
        // unless it asks for an implausible jump (then its refusal stands).
        try {
          this.deps.counters.skipTo(Number(result.nextCounter));
        } catch (err) {
          this.deps.logger.warn({ deviceId, err: String(err) }, 'not skipping the counter ahead');
          return answer;
        }
        this.deps.logger.info(
          { deviceId, next: Number(result.nextCounter) },
          'counter behind the device: sending again',
        );
      } else {
        return answer;
      }
      epoch = seen;
      answer = await this.sendOnce(deviceId, body, timeoutMs, epoch, options);
    }
    return answer;
  }

  private async sendOnce(
    deviceId: string,
    body: CommandBody,
    timeoutMs: number,
    keyEpoch: number,
    { ttlMs, onCorrelationId }: SendOptions,
  ): Promise<{ result: doorbell.v1.CommandResult; event: VerifiedEvent }> {
    const nowMs = this.deps.nowMs ?? Date.now;
    const topics = topicsFor(deviceId);
    const correlationId = newCorrelationId();
    const issuedAtMs = nowMs();
    const payload = sealCommand(
      doorbell.v1.Command.create({
        ...body,
        header: {
          deviceId,
          topic: topics.cmd,
          counter: this.deps.counters.next(),
          issuedAtMs,
          expiresAtMs: issuedAtMs + (ttlMs ?? this.deps.ttlMs ?? 30_000),
          correlationId,
          keyEpoch,
        },
      }),
      this.deps.key,
    );
    onCorrelationId?.(correlationId);
    const name = Object.keys(body)[0] ?? 'command';
    const reply = this.pending.wait(correlationId, `${deviceId} for ${name}`, timeoutMs);
    // A timeout while the publish is still pending is reported by `await reply` below.
    reply.catch(() => undefined);
    this.deps.logger.debug({ deviceId, correlationId, name }, 'sending command');
    try {
      await this.deps.connection.publish(topics.cmd, payload, { qos: 1 });
    } catch (err) {
      // Not sent, or the connection closed before the PUBACK: no reply is awaited any more.
      this.pending.cancel(correlationId);
      throw err;
    }
    const event = await reply;
    const result = event.event.commandResult;
    if (!result) throw new Error('result event without a command result');
    return { result: doorbell.v1.CommandResult.fromObject(result), event };
  }
}
