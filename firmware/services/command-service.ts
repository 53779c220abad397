import type { Logger } from '../../common/logger.js';
import type { Chime } from '../../hal/index.js';
import {
  doorbell,
  errorKindOf,
  openCommand,
  ReplayError,
  type ReplayGuard,
  VerifyError,
  type VerifyKey,
} from '../../proto/index.js';
import type { EventBody } from './event-signer.js';
import type { RateLimit } from './rate-limit.js';

export interface CommandServiceDeps {
  deviceId: string;
  commandTopic: string;
  hubKeys: ReadonlyMap<string, VerifyKey>;
  chime: Chime;
  status: () => doorbell.v1.IStatus;
  /** Queues a signed result event that carries the command's correlation id. */
  reply: (body: EventBody, correlationId: string | undefined) => void;
  errorReplies: RateLimit;
  nowMs: () => number;
  logger: Logger;
  /** The replay window and trusted clock (`<stateDir>/replay.json`); without it, counters are not checked. */
  replay?: ReplayGuard;
  /** Longest allowed command lifetime (expires_at_ms - issued_at_ms); default 30000. */
  maxCommandLifetimeMs?: number;
}

export const DEFAULT_MAX_COMMAND_LIFETIME_MS = 30_000;

const { ErrorKind } = doorbell.v1;

/**
 * Verifies and executes commands. Every command gets exactly one signed
 * result: ok, or a typed error. Rejected input is logged and answered (at a
 * bounded rate, so garbage cannot make the device flood the broker); nothing
 * here throws into the MQTT client.
 *
 * Duplicates: a command whose counter was already accepted in this run (a QoS 1
 * redelivery) is dropped with a log line and no reply, because its result was
 * already sent; answering REPLAY would give the hub two results for one
 * correlation id. Other replay-window refusals (too old, or not above the mark
 * kept across a restart) get a signed REPLAY error like any other rejection.
 */
export class CommandService {
  constructor(private readonly deps: CommandServiceDeps) {}

  handle(topic: string, payload: Uint8Array, retained: boolean): void {
    const { logger } = this.deps;
    if (retained) {
      logger.warn({ topic, bytes: payload.length }, 'ignored a retained message on the command topic');
      return;
    }
    let opened: ReturnType<typeof openCommand>;
    try {
      opened = openCommand(payload, {
        deviceId: this.deps.deviceId,
        topic: this.deps.commandTopic,
        nowMs: this.deps.nowMs(),
        keys: this.deps.hubKeys,
        maxLifetimeMs: this.deps.maxCommandLifetimeMs ?? DEFAULT_MAX_COMMAND_LIFETIME_MS,
        ...(this.deps.replay ? { replay: this.deps.replay } : {}),
      });
    } catch (err) {
      this.reject(err, payload.length);
      return;
    }
    const { command, key, header } = opened;
    logger.info(
      { kind: command.kind, keyId: key.keyId, correlationId: header.correlationId },
      'command accepted',
    );
    this.deps.reply({ commandResult: this.execute(command) }, header.correlationId);
  }

  private execute(command: doorbell.v1.Command): doorbell.v1.ICommandResult {
    switch (command.kind) {
      case 'ringChimeTest':
        return this.ringChimeTest();
      case 'getStatus':
        return { ok: true, status: this.deps.status() };
      case undefined:
        return failure(ErrorKind.UNSUPPORTED_COMMAND, 'the command names no action');
      default: {
        const unknown: never = command.kind;
        return failure(ErrorKind.UNSUPPORTED_COMMAND, `unsupported command ${String(unknown)}`);
      }
    }
  }

  private ringChimeTest(): doorbell.v1.ICommandResult {
    try {
      const result = this.deps.chime.ring();
      if (result.started) return { ok: true };
      return failure(ErrorKind.BUSY, `chime did not ring: ${result.reason ?? 'unknown'}`);
    } catch (err) {
      this.deps.logger.error({ err }, 'chime test failed');
      return failure(ErrorKind.HARDWARE, (err as Error).message);
    }
  }

  private reject(err: unknown, bytes: number): void {
    const { logger } = this.deps;
    if (!(err instanceof VerifyError)) {
      logger.error({ err }, 'command verification failed unexpectedly');
      this.replyError(ErrorKind.INTERNAL, 'internal error', undefined);
      return;
    }
    if (err instanceof ReplayError && err.decision === 'replay') {
      logger.info(
        { correlationId: err.correlationId, reason: err.message },
        'dropped a duplicate of an accepted command',
      );
      return;
    }
    logger.warn({ kind: err.kind, bytes, reason: err.message }, 'command rejected');
    this.replyError(errorKindOf(err.kind), err.message, err.correlationId);
  }

  private replyError(kind: doorbell.v1.ErrorKind, message: string, correlationId: string | undefined): void {
    if (!this.deps.errorReplies.tryTake()) {
      this.deps.logger.debug('error reply suppressed by rate limit');
      return;
    }
    this.deps.reply({ commandResult: failure(kind, message) }, correlationId);
  }
}

function failure(kind: doorbell.v1.ErrorKind, message: string): doorbell.v1.ICommandResult {
  return { ok: false, errorKind: kind, errorMessage: message.slice(0, 200) };
}
