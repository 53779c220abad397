import { doorbell } from '../../proto/index.js';
import {
  CheckFailure,
  CheckSkipped,
  isKind,
  needHub,
  percentile,
  type SuiteContext,
  sleep,
  waitForEdge,
} from './context.js';

/** One check: resolves with a detail line (and data), throws CheckFailure / CheckSkipped. */
export interface Check {
  name: string;
  run(ctx: SuiteContext): Promise<{ detail: string; data?: Record<string, unknown> }>;
}

/** The board ignores a press starting within 500 ms of a release (lockout): wait it out. */
const LOCKOUT_MS = 700;

export const handshake: Check = {
  name: 'handshake',
  async run({ driver }) {
    const id = driver.identity;
    if (!id) throw new CheckFailure('the rig did not complete the handshake');
    const { roundTripMs } = await driver.ping(Uint8Array.of(1, 2, 3));
    return { detail: `${id.firmware} (${id.serial}), v${id.version}, ping ${roundTripMs.toFixed(1)} ms` };
  },
};

export const pressRingsChime: Check = {
  name: 'press rings the chime',
  async run(ctx) {
    // A retry after a lost ACK follows a press that did happen: let its lockout pass.
    await sleep(LOCKOUT_MS);
    const from = ctx.chime.length;
    await ctx.driver.press(100);
    const on = await waitForEdge(ctx, from, 1, 2000, 'after a 100 ms press');
    await waitForEdge(ctx, from, 0, 2000, 'after the chime went on (it must go off)');
    return { detail: `chime on at rig t=${on.tUs} µs, then off` };
  },
};

export const pressReachesHub: Check = {
  name: 'press gives a verified event at the hub',
  async run(ctx) {
    const hub = needHub(ctx);
    await sleep(LOCKOUT_MS);
    const since = process.hrtime.bigint();
    await ctx.driver.press(100);
    const e = await hub.waitFor(isKind('buttonPressed', since), 10_000, 'buttonPressed event');
    return { detail: `buttonPressed #${e.counter} verified (${e.payloadBytes} bytes)` };
  },
};

export const pressToChimeLatency: Check = {
  name: 'press-to-chime latency',
  async run(ctx) {
    const samples: number[] = [];
    for (let i = 0; i < ctx.latencyPresses; i++) {
      await sleep(LOCKOUT_MS);
      const from = ctx.chime.length;
      const { uptimeUs } = await ctx.driver.info();
      await ctx.driver.press(60);
      const on = await waitForEdge(ctx, from, 1, 2000, `after press ${i + 1}`);
      samples.push(Number(on.tUs - uptimeUs) / 1000);
      await waitForEdge(ctx, from, 0, 2000, `after press ${i + 1} (chime off)`);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    return {
      detail: `n=${samples.length} p50 ${p50.toFixed(1)} ms p99 ${p99.toFixed(1)} ms (rig clock, INFO before PRESS to the chime edge: includes one link hop and the 30 ms debounce)`,
      data: { samplesMs: samples, p50Ms: p50, p99Ms: p99 },
    };
  },
};

export const bounceStormRingsOnce: Check = {
  name: 'bounce storm rings once',
  async run(ctx) {
    await sleep(LOCKOUT_MS);
    const from = ctx.chime.length;
    const since = process.hrtime.bigint();
    // 50 bounce edges 400 µs apart (20 ms), plus the closing edge: the contact settles pressed.
    await ctx.driver.bounce({ edges: 51, spacingUs: 400, settleMs: 150 });
    await sleep(1500);
    const rings = ctx.chime.slice(from).filter((e) => e.level === 1).length;
    if (rings !== 1) throw new CheckFailure(`${rings} chime rings after a 50-edge bounce storm, expected 1`);
    const hub = ctx.hub;
    if (!hub) return { detail: '1 ring (no hub to count events)' };
    const presses = hub.events.filter(isKind('buttonPressed', since)).length;
    if (presses !== 1) throw new CheckFailure(`${presses} buttonPressed events at the hub, expected 1`);
    return { detail: '1 ring, 1 buttonPressed event' };
  },
};

export const holdRequestsPairing: Check = {
  name: 'a 5.5 s hold requests pairing',
  async run(ctx) {
    const hub = needHub(ctx);
    await sleep(LOCKOUT_MS);
    const since = process.hrtime.bigint();
    await ctx.driver.hold(5500);
    await hub.waitFor(isKind('pairingRequested', since), 5000, 'pairingRequested event');
    return { detail: 'pairingRequested verified at the hub' };
  },
};

export const powerCycle: Check = {
  name: 'power cut, then power on: back online',
  async run(ctx) {
    const hub = needHub(ctx);
    await ctx.driver.power(false);
    await sleep(300);
    const since = process.hrtime.bigint();
    await ctx.driver.power(true);
    const online = (e: { event: doorbell.v1.Event; receivedAtNs: bigint; channel: string }) =>
      e.channel === 'status' &&
      e.receivedAtNs >= since &&
      e.event.status?.state === doorbell.v1.Status.State.ONLINE;
    const e = await hub.waitFor(online, 30_000, 'ONLINE status after power on');
    const bootMs = Number(e.receivedAtNs - since) / 1e6;
    // The board answers its button again.
    await sleep(LOCKOUT_MS);
    const from = ctx.chime.length;
    await ctx.driver.press(100);
    await waitForEdge(ctx, from, 1, 5000, 'after power on');
    return {
      detail: `ONLINE ${bootMs.toFixed(0)} ms after power on; the button rings again`,
      data: { bootMs },
    };
  },
};

export const lampGivesMotion: Check = {
  name: 'lamp on gives a motion event',
  async run(ctx) {
    const hub = needHub(ctx);
    if (!ctx.driver.identity?.capabilities.includes('lamp')) throw new CheckSkipped('the rig has no lamp');
    const since = process.hrtime.bigint();
    await ctx.driver.lamp(true);
    try {
      const e = await hub.waitFor(
        isKind('motionStarted', since),
        15_000,
        'motionStarted event after the lamp went on (is media enabled on the board?)',
      );
      const afterMs = Number(e.receivedAtNs - since) / 1e6;
      return {
        detail: `motionStarted in zone '${e.event.motionStarted?.zone ?? ''}' ${afterMs.toFixed(0)} ms after the lamp went on`,
        data: { afterMs },
      };
    } finally {
      await ctx.driver.lamp(false);
    }
  },
};

export const pressRecordsClip: Check = {
  name: 'a press records a clip',
  async run(ctx) {
    const hub = needHub(ctx);
    await sleep(LOCKOUT_MS);
    const since = process.hrtime.bigint();
    const pressedAtMs = Date.now();
    await ctx.driver.press(100);
    const e = await hub.waitFor(
      (v) => isKind('clipRecorded', since)(v) && v.event.clipRecorded?.reason === 'press',
      60_000,
      'clipRecorded event for the press (is media enabled on the board?)',
    );
    const clip = e.event.clipRecorded;
    const startMs = Number(clip?.startMs ?? 0);
    const endMs = Number(clip?.endMs ?? 0);
    const bytes = Number(clip?.bytes ?? 0);
    // Board and host clocks may differ by a little; the clip must cover the press.
    if (!(startMs <= pressedAtMs + 1000 && endMs >= pressedAtMs - 1000) || bytes <= 0) {
      throw new CheckFailure(
        `clip ${clip?.clipId ?? '?'} spans ${startMs}..${endMs} (${bytes} bytes), not the press at ${pressedAtMs}`,
      );
    }
    return {
      detail: `clip ${clip?.clipId ?? '?'}: ${((endMs - startMs) / 1000).toFixed(1)} s, ${bytes} bytes, encrypted`,
      data: { durationMs: endMs - startMs, bytes },
    };
  },
};

export const SUITES: Record<'smoke' | 'full', Check[]> = {
  smoke: [handshake, pressRingsChime, pressReachesHub],
  full: [
    handshake,
    pressRingsChime,
    pressReachesHub,
    pressToChimeLatency,
    bounceStormRingsOnce,
    holdRequestsPairing,
    // Before the power cut: a board that has just booted may not have its camera up yet.
    lampGivesMotion,
    pressRecordsClip,
    powerCycle,
  ],
};
