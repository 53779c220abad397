import type { Logger } from '../../common/logger.js';
import type { AuditLog } from '../audit-log.js';
import type { EventBody } from '../services/event-signer.js';

export type OtaStage =
  | 'begun'
  | 'received'
  | 'verified'
  | 'refused'
  | 'written'
  | 'switched'
  | 'self-test'
  | 'committed'
  | 'rolled-back'
  | 'failed';

/** What an OtaProgress event says of the bundle besides its stage. */
export interface ProgressInfo {
  sha256: string; // hex, '' when unknown
  version: string;
  securityCounter: number;
  detail: string;
  nextOffset: number;
}

const MAX_DETAIL_CHARS = 200;

/** The signed OtaProgress event's body. */
export function progressBody(stage: OtaStage, info: ProgressInfo): EventBody {
  return {
    otaProgress: {
      stage,
      bundleSha256: Buffer.from(info.sha256, 'hex'),
      version: info.version,
      securityCounter: info.securityCounter,
      detail: info.detail.slice(0, MAX_DETAIL_CHARS),
      nextOffset: info.nextOffset,
    },
  };
}

/**
 * Every step of an update, said three ways: a signed OtaProgress event
 * (through the durable outbox), a log line and an audit log entry.
 */
export class ProgressReporter {
  constructor(private readonly deps: { emit: (body: EventBody) => void; logger: Logger; audit: AuditLog }) {}

  report(stage: OtaStage, info: ProgressInfo): void {
    const body = progressBody(stage, info);
    const { version, securityCounter, detail } = body.otaProgress ?? {};
    this.deps.emit(body);
    this.deps.logger.info({ stage, version, securityCounter, detail }, `update ${stage}`);
    this.deps.audit
      .append(`ota.${stage}`, { ...info, detail: detail ?? '' })
      .catch((err: unknown) => this.deps.logger.error({ err }, 'audit log append failed'));
  }
}
