import { execFile } from 'node:child_process';

/** gst-inspect-1.0 itself is missing or hangs: GStreamer's tools are not installed or broken. */
export class GstInspectError extends Error {
  constructor(
    readonly element: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${element}: ${message}`, options);
    this.name = 'GstInspectError';
  }
}

/** Answers whether a GStreamer element factory is installed. Injected so tests need no GStreamer. */
export type ElementCheck = (element: string) => Promise<boolean>;

const INSPECT_TIMEOUT_MS = 10_000;

/**
 * Asks `gst-inspect-1.0 --exists --atleast-version=0.0 <element>` (exit 0 =
 * installed). Without the version floor `--exists` also demands the plugin's
 * version be at least GStreamer's own, which refuses plugins versioned on
 * their own (libcamera's is 0.0.x). Throws
 * GstInspectError when gst-inspect-1.0 itself is missing or hangs.
 */
export const gstInspectCheck: ElementCheck = (element) =>
  new Promise((resolve, reject) => {
    execFile(
      'gst-inspect-1.0',
      ['--exists', '--atleast-version=0.0', element],
      { timeout: INSPECT_TIMEOUT_MS },
      (err) => {
        if (err === null) {
          resolve(true);
          return;
        }
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(
            new GstInspectError(element, 'gst-inspect-1.0 not found (install gstreamer1.0-tools)', {
              cause: err,
            }),
          );
        } else if (err.killed) {
          reject(
            new GstInspectError(element, `gst-inspect-1.0 gave no answer in ${INSPECT_TIMEOUT_MS} ms`, {
              cause: err,
            }),
          );
        } else {
          resolve(false);
        }
      },
    );
  });
