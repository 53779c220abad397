import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Logger } from '../common/logger.js';
import type { TlsFiles } from '../common/mqtt-connection.js';
import { doorbell, validateDeviceId } from '../proto/index.js';
import type { CommandBody, Commander } from './commander.js';
import type { EventWatcher, VerifiedEvent } from './event-watcher.js';
import { loadDevices } from './hub-state.js';
import { openCommandSession } from './session.js';

/** The largest bundle `ota push` reads (the device's default staging cap). */
export const MAX_PUSH_BYTES = 64 * 1024 * 1024;
/** Bytes of bundle per OtaChunk: the signed envelope is capped at 16 KiB. */
export const CHUNK_BYTES = 12 * 1024;
/** How long one chunk or begin may take to be answered. */
const COMMAND_TIMEOUT_MS = 10_000;
/** Applying verifies and writes a whole slot. */
const APPLY_TIMEOUT_MS = 120_000;

export interface OtaContext {
  stateDir: string;
  broker: string;
  tls: TlsFiles;
  logger: Logger;
  /** push: how long to wait for the device to report committed (or rolled back) after the apply. */
  timeoutMs: number;
  /** Sign with the owner key (Administer, the default) or the hub key. */
  as: 'owner' | 'hub';
  out?: NodeJS.WritableStream;
  err?: NodeJS.WriteStream | NodeJS.WritableStream;
}

export class OtaUsageError extends Error {}

const FINAL_STAGES = new Set(['committed', 'rolled-back', 'refused', 'failed']);

interface Session {
  commander: Commander;
  watcher: EventWatcher;
  send(body: CommandBody, timeoutMs?: number): Promise<doorbell.v1.CommandResult>;
  close(): Promise<void>;
}

async function openSession(ctx: OtaContext, deviceId: string): Promise<Session> {
  validateDeviceId(deviceId);
  const devices = await loadDevices(ctx.stateDir);
  if (!devices.has(deviceId))
    throw new OtaUsageError(`device '${deviceId}' is not paired or pinned (see pair)`);
  const session = await openCommandSession({
    stateDir: ctx.stateDir,
    broker: ctx.broker,
    tls: ctx.tls,
    logger: ctx.logger,
    devices,
    as: ctx.as,
    connectTimeoutMs: COMMAND_TIMEOUT_MS,
    clientPurpose: 'ota',
  });
  return {
    commander: session.commander,
    watcher: session.watcher,
    send: (body, timeoutMs = COMMAND_TIMEOUT_MS) => session.send(deviceId, body, timeoutMs),
    close: () => session.close(),
  };
}

const errorText = (r: doorbell.v1.ICommandResult): string =>
  `${doorbell.v1.ErrorKind[r.errorKind ?? 0] ?? r.errorKind}: ${r.errorMessage ?? ''}`;

/** A progress bar on a terminal, a plain line every 10% otherwise. */
class Progress {
  private lastTenth = -1;
  constructor(
    private readonly err: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly total: number,
  ) {}
  update(done: number): void {
    const pct = Math.floor((done * 100) / this.total);
    if (this.err.isTTY) {
      const width = 30;
      const filled = Math.round((done * width) / this.total);
      this.err.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${done}/${this.total} bytes`,
      );
      if (done >= this.total) this.err.write('\n');
      return;
    }
    const tenth = Math.floor(pct / 10);
    if (tenth > this.lastTenth) {
      this.lastTenth = tenth;
      this.err.write(`sent ${pct}% (${done} of ${this.total} bytes)\n`);
    }
  }
}

function describeProgress(deviceId: string, p: doorbell.v1.IOtaProgress): string {
  const what = p.version ? ` ${p.version} (security counter ${p.securityCounter})` : '';
  return `ota ${deviceId}: ${p.stage}${what}${p.detail ? `: ${p.detail}` : ''}`;
}

/**
 * `doorbell-hub ota push BUNDLE <device>`: OtaBegin (the device answers
 * where to resume), chunks from there, OtaApply, then waits for the device
 * to restart into the new firmware and report `committed` (exit 0), or
 * `rolled-back`/`refused`/`failed` or nothing within `timeoutMs` (exit 1).
 * Every OtaProgress event of this bundle is printed as it arrives.
 */
export async function otaPush(ctx: OtaContext, bundlePath: string, deviceId: string): Promise<number> {
  const out = ctx.out ?? process.stdout;
  const err = ctx.err ?? process.stderr;
  const handle = await open(bundlePath, 'r');
  let bundle: Buffer;
  try {
    const { size } = await handle.stat();
    if (size > MAX_PUSH_BYTES)
      throw new OtaUsageError(`${bundlePath} is ${size} bytes; at most ${MAX_PUSH_BYTES}`);
    if (size === 0) throw new OtaUsageError(`${bundlePath} is empty`);
    bundle = await handle.readFile();
  } finally {
    await handle.close();
  }
  const sha = createHash('sha256').update(bundle).digest();
  const shaHex = sha.toString('hex');
  const session = await openSession(ctx, deviceId);
  let finalStage: ((stage: string) => void) | undefined;
  const final = new Promise<string>((resolve) => {
    finalStage = resolve;
  });
  const onEvent = (e: VerifiedEvent): void => {
    const p = e.event.otaProgress;
    if (e.deviceId !== deviceId || !p) return;
    if (Buffer.from(p.bundleSha256 ?? []).toString('hex') !== shaHex) return;
    out.write(`${describeProgress(deviceId, p)}\n`);
    if (FINAL_STAGES.has(p.stage ?? '')) finalStage?.(p.stage ?? '');
  };
  session.watcher.on('event', onEvent);
  try {
    out.write(`pushing ${bundlePath} (${bundle.length} bytes, sha256 ${shaHex}) to ${deviceId}\n`);
    const begun = await session.send({ otaBegin: { bundleSize: bundle.length, bundleSha256: sha } });
    if (!begun.ok) {
      out.write(`ota ${deviceId}: begin refused: ${errorText(begun)}\n`);
      return 1;
    }
    let offset = Number(begun.otaState?.nextOffset ?? 0);
    if (offset > 0) out.write(`resuming at byte ${offset} of ${bundle.length}\n`);
    const progress = new Progress(err, bundle.length);
    let stalls = 0;
    while (offset < bundle.length) {
      const data = bundle.subarray(offset, offset + CHUNK_BYTES);
      const r = await session.send({ otaChunk: { bundleSha256: sha, offset, data } });
      if (!r.ok) {
        // A refusal's OtaProgress event may still be on its way; give it a moment to be printed.
        await Promise.race([final, new Promise((res) => setTimeout(res, 500))]);
        out.write(`ota ${deviceId}: refused: ${errorText(r)}\n`);
        return 1;
      }
      const next = Number(r.otaState?.nextOffset ?? 0);
      stalls = next <= offset ? stalls + 1 : 0;
      if (stalls >= 3) {
        out.write(`ota ${deviceId}: the device does not accept data at byte ${offset}\n`);
        return 1;
      }
      offset = next;
      progress.update(offset);
    }
    const applied = await session.send({ otaApply: { bundleSha256: sha } }, APPLY_TIMEOUT_MS);
    if (!applied.ok) {
      await Promise.race([final, new Promise((res) => setTimeout(res, 500))]);
      out.write(`ota ${deviceId}: apply refused: ${errorText(applied)}\n`);
      return 1;
    }
    out.write(`ota ${deviceId}: applied; waiting up to ${ctx.timeoutMs} ms for the new firmware to commit\n`);
    let timer: NodeJS.Timeout | undefined;
    const stage = await Promise.race([
      final,
      new Promise<string>((res) => {
        timer = setTimeout(() => res('timeout'), ctx.timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (stage === 'committed') {
      out.write(`ota ${deviceId}: committed\n`);
      return 0;
    }
    out.write(
      stage === 'timeout'
        ? `ota ${deviceId}: no commit reported within ${ctx.timeoutMs} ms\n`
        : `ota ${deviceId}: update not committed (${stage})\n`,
    );
    return 1;
  } finally {
    session.watcher.off('event', onEvent);
    await session.close();
  }
}

/** `doorbell-hub ota status <device>`: the running and committed firmware and any staged transfer. */
export async function otaStatus(ctx: OtaContext, deviceId: string): Promise<number> {
  const out = ctx.out ?? process.stdout;
  const session = await openSession(ctx, deviceId);
  try {
    const r = await session.send({ otaGetState: {} });
    const printable = doorbell.v1.CommandResult.toObject(doorbell.v1.CommandResult.fromObject(r), {
      enums: String,
      defaults: false,
      bytes: String,
    });
    if (r.otaState?.bundleSha256) {
      (printable.otaState as Record<string, unknown>).bundleSha256 = Buffer.from(
        r.otaState.bundleSha256,
      ).toString('hex');
    }
    out.write(`${JSON.stringify({ device: deviceId, ...printable })}\n`);
    return r.ok ? 0 : 1;
  } finally {
    await session.close();
  }
}
