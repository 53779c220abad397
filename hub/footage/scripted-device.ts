import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { doorbell } from '../../proto/index.js';
import type { Commander } from '../commander.js';
import type { EventWatcher, VerifiedEvent } from '../event-watcher.js';
import { MAX_CHUNK_BYTES } from './fetch.js';
import { FootageStore } from './store.js';

/** Test helpers: a scripted device answering FetchItem, for the hub side's tests. */
export const DEVICE = 'front-door';
export const ITEM = '1750000000000-0123456789ab';

/** What a misbehaving device or a stranger on the data topic adds around the real chunks of a window. */
export type Noise = 'foreign-cid' | 'other-item' | 'duplicate' | 'oversized' | 'ahead' | 'drop-rest';

export function chunkEvent(cid: string, itemId: string, offset: number, data: Uint8Array): VerifiedEvent {
  return {
    deviceId: DEVICE,
    topic: `doorbell/v1/${DEVICE}/data`,
    channel: 'data',
    event: doorbell.v1.Event.create({ itemChunk: { itemId, offset, data } }),
    counter: 0,
    correlationId: cid,
    issuedAtMs: 0,
    receivedAtMs: 0,
    receivedAtNs: 0n,
    retained: false,
    payloadBytes: data.length,
  };
}

/**
 * A device that answers FetchItem like firmware/services/footage-service.ts,
 * sending each window's chunks (and the planned noise) through a real
 * EventWatcher's 'event' — the chunks the hub's verification let through.
 */
export interface ScriptOptions {
  /** Flip the first byte sent. */
  tamper?: boolean;
  /** Send these bytes (of the same length) instead of the file whose hash the answers sign. */
  sendInstead?: Uint8Array;
  /** Awaited before the chunks of each window from this offset are sent. */
  beforeWindow?: (offset: number) => Promise<void>;
}

export function scriptedDevice(
  file: Uint8Array,
  watcher: EventWatcher,
  noise: Noise[][],
  o: ScriptOptions = {},
) {
  const tamper = o.tamper ?? false;
  const sent = o.sendInstead ?? file;
  const sha256 = createHash('sha256').update(file).digest();
  let window = 0;
  const requests: number[] = [];
  const send: Commander['send'] = async (_device, body, _timeout, options) => {
    const cid = `cid-${window}`;
    options?.onCorrelationId?.(cid);
    const f = body.fetchItem as doorbell.v1.IFetchItem;
    const offset = Number(f.offset);
    requests.push(offset);
    const end = Math.min(file.length, offset + (f.maxBytes || 1 << 20));
    const plan = noise[window % noise.length] ?? [];
    window += 1;
    const emit = (e: VerifiedEvent) => watcher.emit('event', e);
    const emitWindow = () => {
      for (let at = offset; at < end; at += MAX_CHUNK_BYTES) {
        const data = Uint8Array.from(sent.subarray(at, Math.min(end, at + MAX_CHUNK_BYTES)));
        if (tamper && at === 0) data[0] = (data[0] ?? 0) ^ 1;
        if (plan.includes('foreign-cid'))
          emit(chunkEvent('someone-else', ITEM, at, randomBytes(data.length)));
        if (plan.includes('other-item')) emit(chunkEvent(cid, '1750000000000-ffffffffffff', at, data));
        if (plan.includes('oversized')) emit(chunkEvent(cid, ITEM, at, new Uint8Array(MAX_CHUNK_BYTES + 1)));
        if (plan.includes('ahead')) emit(chunkEvent(cid, ITEM, at + data.length, data));
        if (plan.includes('drop-rest') && at > offset) return; // the rest of the window is lost
        emit(chunkEvent(cid, ITEM, at, data));
        if (plan.includes('duplicate')) emit(chunkEvent(cid, ITEM, at, data));
      }
    };
    // After the answer, as a device's chunks follow it.
    void (o.beforeWindow?.(offset) ?? Promise.resolve()).then(() => setImmediate(emitWindow));
    const item = {
      id: ITEM,
      kind: 'clip',
      reason: 'press',
      startMs: 1,
      endMs: 2,
      triggerMs: 1,
      bytes: file.length,
      sha256,
    };
    const result = doorbell.v1.CommandResult.create({ ok: true, window: { item, offset, end } });
    return { result, event: chunkEvent(cid, ITEM, 0, new Uint8Array()) };
  };
  return { commander: { send }, requests };
}

export async function withStore<T>(fn: (store: FootageStore, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'hub-footage-'));
  try {
    return await fn(new FootageStore(dir), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
