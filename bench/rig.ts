import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { SerialPort } from 'serialport';
import { silentLogger } from '../common/logger.js';
import { startEmulatedStack } from '../test-rig/emulator/stack.js';
import { RigDriver } from '../test-rig/protocol/driver.js';
import type { RigTransport } from '../test-rig/protocol/transport.js';
import { writeFrame } from '../test-rig/protocol/writer.js';
import { createPtyPair, type PtyPair } from '../test-rig/pty-pair.js';
import { openSerialTransport } from '../test-rig/serial-transport.js';
import { machine } from './machine.js';
import type { BenchArgs } from './run.js';
import { summary } from './stats.js';

const WARMUP = 10;
/** Our presses and baseline round trips alternate in blocks of this size, so both see the same machine. */
const BLOCK = 50;
/** The sim daemon's debounce (button minPressMs): subtracted from every sample. */
const MIN_PRESS_MS = 10;
/** Held past the debounce so the press is recognised; the chime edge comes at MIN_PRESS_MS, mid-press. */
const PRESS_MS = 20;
/** Short timings so the run fits in seconds; they are outside the measured path. */
const HAL = {
  button: { minPressMs: MIN_PRESS_MS, lockoutMs: 0 },
  chime: { pulseMs: 10, minGapMs: 0 },
};
const METHOD =
  'host clock: performance.now() when the PRESS frame is handed to the serial port -> when the CHIME_EDGE(on) frame is parsed, minus min_press_ms';

/**
 * Press -> chime latency through the rig emulator and its serial link, beyond
 * the configured debounce. Runs the stack `doorbell-rig emulate` runs (a
 * Mosquitto, a sim daemon, the emulator on a socat pty pair) and drives it
 * with the RigDriver, as the suites do.
 *
 * Measured on the host, not the rig clock: the protocol gives no rig
 * timestamp for the start of a press (the suite's INFO-before-PRESS adds a
 * link hop and a round of emulator work), so the wrapped transport notes the
 * host time the PRESS frame is written and the chime listener the time the
 * CHIME_EDGE(on) arrives. The sample is that span minus MIN_PRESS_MS: two pty
 * hops, the emulator, the wire socket and the daemon's reaction.
 *
 * Baseline, same run: a second socat pty pair whose far end (in this process,
 * like the emulator) answers every PRESS-sized frame with a CHIME_EDGE-sized
 * one; the round trip of those bytes, in blocks interleaved with the presses.
 */
export async function rigPressToChime(options: BenchArgs): Promise<Record<string, unknown>> {
  const { presses } = options;
  const total = presses + WARMUP;
  const logger = silentLogger();
  const stack = await startEmulatedStack({ logger, hal: HAL });
  let driver: RigDriver | undefined;
  let echo: EchoLink | undefined;
  try {
    const timed = new TimedTransport(await openSerialTransport({ path: stack.hostPath }));
    driver = new RigDriver(timed, { logger, keepaliveMs: 0 });
    const { version } = await driver.open();
    const pressBytes = writeFrame({
      version,
      id: 1,
      message: { type: 'PRESS', durationMs: PRESS_MS },
    }).length;
    const chimeBytes = writeFrame({
      version,
      id: 0,
      message: { type: 'CHIME_EDGE', level: 1, tUs: 10_000_000n },
    }).length;

    let chimeOnAt: number | undefined;
    let chimeOff = false;
    const unwatch = await driver.watchChime(({ level }) => {
      if (level === 1) chimeOnAt ??= performance.now();
      else chimeOff = true;
    });

    const rig = driver;
    /** One press; the host-clock span from the PRESS write to the chime edge, or undefined without an edge. */
    const pressOnce = async (): Promise<number | undefined> => {
      chimeOnAt = undefined;
      chimeOff = false;
      timed.arm();
      await rig.press(PRESS_MS);
      for (let i = 0; i < 200 && !chimeOff; i++) await sleep(2);
      // Released long enough for the debouncer to see the release.
      await sleep(MIN_PRESS_MS + 5);
      const at = chimeOnAt;
      const wrote = timed.armedWriteAt;
      return at === undefined || wrote === undefined ? undefined : at - wrote;
    };

    // The stack returned once the daemon's wire socket was connected; a press that gives no
    // chime edge now (the daemon still wiring its button) is tried again.
    const deadline = performance.now() + 20_000;
    while ((await pressOnce()) === undefined) {
      if (performance.now() > deadline) throw new Error('the sim daemon never rang the chime');
      await sleep(200);
    }

    echo = await EchoLink.open(pressBytes, chimeBytes);
    const samples: number[] = [];
    const baseline: number[] = [];
    let missed = 0;
    for (let done = 0; done < total; ) {
      const block = Math.min(BLOCK, total - done);
      for (let i = 0; i < block; i++) {
        const span = await pressOnce();
        if (done + i < WARMUP) continue;
        if (span === undefined) missed++;
        else samples.push(span - MIN_PRESS_MS);
      }
      const measured = Math.max(0, done + block - WARMUP) - Math.max(0, done - WARMUP);
      done += block;
      for (let i = 0; i < measured; i++) baseline.push(await echo.roundTrip());
    }
    await unwatch();
    if (samples.length < presses * 0.99) {
      throw new Error(`only ${samples.length} of ${presses} presses gave a chime edge (${missed} missed)`);
    }
    if (options.samplesFile) {
      await writeFile(options.samplesFile, JSON.stringify({ pressToChimeMs: samples, baselineMs: baseline }));
    }
    const ours = summary(samples);
    const base = summary(baseline);
    return {
      metric: 'rig-press-to-chime',
      presses,
      warmup_presses: WARMUP,
      measured: samples.length,
      missed,
      method: METHOD,
      min_press_ms: MIN_PRESS_MS,
      press_ms: PRESS_MS,
      press_frame_bytes: pressBytes,
      chime_edge_frame_bytes: chimeBytes,
      p50_ms: ours.p50,
      p90_ms: ours.p90,
      p99_ms: ours.p99,
      max_ms: ours.max,
      baseline: `second socat pty pair, far end in this process answers ${pressBytes} bytes with ${chimeBytes} bytes (node-serialport), in blocks interleaved with ours`,
      baseline_samples: baseline.length,
      baseline_p50_ms: base.p50,
      baseline_p99_ms: base.p99,
      ratio_p99: Math.round((ours.p99 / base.p99) * 100) / 100,
      targets: { ratio_p99: 3 },
      machine: machine(),
    };
  } finally {
    await driver?.close().catch(() => undefined);
    await echo?.close();
    // Kills the emulator's socat, SIGKILLs the daemon and stops the broker, each by pid.
    await stack.stop();
  }
}

/** The driver's transport, noting the host time of the first write after `arm()` (the PRESS frame). */
class TimedTransport implements RigTransport {
  private armed = false;
  armedWriteAt: number | undefined;

  constructor(private readonly inner: RigTransport) {}

  arm(): void {
    this.armed = true;
    this.armedWriteAt = undefined;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.armed) {
      this.armed = false;
      this.armedWriteAt = performance.now();
    }
    return this.inner.write(bytes);
  }

  onData(listener: (bytes: Uint8Array) => void): void {
    this.inner.onData(listener);
  }

  onClose(listener: (err?: Error) => void): void {
    this.inner.onClose(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A socat pty pair whose far end answers every `requestBytes` bytes with `replyBytes` bytes. */
class EchoLink {
  private received = 0;
  private waiting: (() => void) | undefined;

  private constructor(
    readonly pty: PtyPair,
    private readonly near: SerialPort,
    private readonly far: SerialPort,
    private readonly request: Buffer,
    private readonly replyBytes: number,
  ) {
    let farCount = 0;
    const reply = Buffer.alloc(replyBytes, 0x55);
    far.on('data', (chunk: Buffer) => {
      farCount += chunk.length;
      while (farCount >= request.length) {
        farCount -= request.length;
        far.write(reply);
      }
    });
    near.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      if (this.received >= this.replyBytes && this.waiting) {
        this.received -= this.replyBytes;
        const done = this.waiting;
        this.waiting = undefined;
        done();
      }
    });
  }

  static async open(requestBytes: number, replyBytes: number): Promise<EchoLink> {
    const pty = await createPtyPair();
    try {
      const [near, far] = await Promise.all(pty.paths.map(openPort));
      if (!near || !far) throw new Error('cannot open the baseline pty pair');
      return new EchoLink(pty, near, far, Buffer.alloc(requestBytes, 0xaa), replyBytes);
    } catch (err) {
      await pty.kill();
      throw err;
    }
  }

  /** Writes one request and resolves with the ms until the whole reply is back. */
  async roundTrip(): Promise<number> {
    const start = performance.now();
    const back = new Promise<void>((resolve) => {
      this.waiting = resolve;
    });
    this.near.write(this.request);
    await back;
    return performance.now() - start;
  }

  async close(): Promise<void> {
    for (const port of [this.near, this.far]) {
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    }
    await this.pty.kill();
  }
}

function openPort(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
  return new Promise((resolve, reject) => {
    port.open((err) => (err ? reject(err) : resolve(port)));
  });
}
