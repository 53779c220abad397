import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { clipAssemblyGraph } from './pipeline/build.js';
import { toLaunchArgv } from './pipeline/launch.js';

let scratchCounter = 0;
const MAX_STDERR = 8192;

export interface AssembleOptions {
  gstLaunch?: string;
  /** The remux is killed after this long (default 10 s + 1 s per segment). */
  timeoutMs?: number;
}

/**
 * Joins MPEG-TS segments of one worker run into one MP4 (H.264, moov first) and
 * streams it. The remux runs in a short-lived `gst-launch-1.0` child: segments go
 * in on stdin, the MP4 comes out on stdout, and mp4mux's scratch file stays in the
 * RAM ring. No re-encoding; a child per clip, so no in-process pipeline leaks.
 *
 * Empty segment files (the one a killed worker had just opened) are skipped, and
 * with no bytes at all it fails at once: given an empty stream, tsdemux exposes no
 * pad and gst-launch would wait forever for preroll. Any failure (a segment gone,
 * the remux erroring, the timeout) kills the child and makes the iterable throw;
 * abandoning the iterable kills it too.
 */
export async function* assembleClip(
  segmentPaths: readonly string[],
  ringDir: string,
  options: AssembleOptions = {},
): AsyncGenerator<Uint8Array> {
  // A segment already gone (pruned) is skipped like an empty one.
  const sizes = await Promise.all(
    segmentPaths.map((p) =>
      stat(p).then(
        (s) => s.size,
        () => 0,
      ),
    ),
  );
  const inputs = segmentPaths.filter((_p, i) => (sizes[i] ?? 0) > 0);
  if (inputs.length === 0) throw new Error('no video data in the selected segments');
  scratchCounter += 1;
  const scratch = path.join(ringDir, `.faststart-${process.pid}-${scratchCounter}.tmp`);
  const child = spawn(
    options.gstLaunch ?? 'gst-launch-1.0',
    ['-q', ...toLaunchArgv(clipAssemblyGraph(scratch))],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  let failure: Error | undefined;
  const kill = (why: string): void => {
    failure ??= new Error(why);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < MAX_STDERR) stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (err) => {
      failure ??= err;
      resolve(null);
    });
    child.once('close', (code) => resolve(code));
  });
  const timer = setTimeout(
    () => kill('clip remux timed out'),
    options.timeoutMs ?? 10_000 + 1000 * inputs.length,
  );
  const gone = new AbortController();
  child.once('close', () => gone.abort());
  child.stdin.on('error', () => {}); // EPIPE when the remux dies; reported through its exit
  const feed = (async () => {
    // Segments are small (one segment of video each): read whole, write with backpressure.
    for (const p of inputs) {
      const data = await readFile(p);
      if (failure !== undefined) return;
      if (!child.stdin.write(data)) await once(child.stdin, 'drain', { signal: gone.signal });
    }
    child.stdin.end();
  })().catch((err: Error) => {
    child.stdin.destroy();
    kill(`reading a segment failed: ${err.message}`);
  });
  try {
    for await (const chunk of child.stdout) {
      if (failure !== undefined) break;
      yield chunk as Uint8Array;
    }
    const code = await exited;
    await feed;
    if (failure !== undefined) throw failure;
    if (code !== 0) throw new Error(`clip remux failed (gst-launch exit ${code}): ${stderr.trim()}`);
  } finally {
    clearTimeout(timer);
    kill('abandoned');
    await rm(scratch, { force: true }).catch(() => {});
  }
}
