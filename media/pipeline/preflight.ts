import type { MediaConfig } from '../config.js';
import type { EncoderFactory } from './build.js';
import type { ElementCheck } from './gst-element-check.js';
import { factoriesOf, type LaunchGraph } from './launch.js';

/** A media configuration GStreamer cannot run; the message says what to change or install. */
export class MediaConfigError extends Error {
  override name = 'MediaConfigError';
}

const AUTO_ORDER: readonly EncoderFactory[] = ['v4l2h264enc', 'x264enc', 'openh264enc'];

/** The hardware encoder when GStreamer has one, else x264enc, else openh264enc. */
export async function chooseEncoder(c: MediaConfig, check: ElementCheck): Promise<EncoderFactory> {
  if (c.encoder !== 'auto') {
    if (!(await check(c.encoder))) {
      throw new MediaConfigError(`media.encoder: GStreamer element "${c.encoder}" is not installed`);
    }
    return c.encoder;
  }
  for (const f of AUTO_ORDER) if (await check(f)) return f;
  throw new MediaConfigError(
    'no H.264 encoder: install gstreamer1.0-plugins-ugly (x264enc) or gstreamer1.0-plugins-bad (openh264enc)',
  );
}

/** Every element of the graph must be installed; the error lists the missing ones. */
export async function checkElements(graph: LaunchGraph, check: ElementCheck): Promise<void> {
  const factories = factoriesOf(graph);
  const present = await Promise.all(factories.map((f) => check(f)));
  const missing = factories.filter((_f, i) => !present[i]);
  if (missing.length > 0) {
    throw new MediaConfigError(`GStreamer elements not installed: ${missing.join(', ')}`);
  }
}

/** A clear message for a pipeline error at start-up (bus 'error' text and element). */
export function explainPipelineError(element: string, message: string): string {
  if (/not.negotiated/i.test(message)) {
    return `caps not negotiated at ${element}: the source cannot deliver the configured size/frame rate/format (${message})`;
  }
  if (/no such element|no element/i.test(message)) return `unknown GStreamer element: ${message}`;
  return `${element}: ${message}`;
}
