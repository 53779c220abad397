/**
 * Where finished clips go. The product implementation is the encrypted clip
 * store (media/store/): it must encrypt from the first byte it writes, since
 * `plaintext` is the only plaintext copy outside the RAM segment ring.
 */
export interface ClipMeta {
  /** A suggested id (unique per device); the sink may use it or choose its own. */
  id: string;
  /** The first trigger's reason, e.g. 'press' or 'motion' (lower case, [a-z0-9-], at most 32). */
  reason: string;
  /** Every merged trigger's reason, in order. */
  reasons: string[];
  /** Wall-clock ms of the first trigger. All times are integers. */
  triggerMs: number;
  /** The window asked for: [first trigger - preroll, last trigger + postroll]. */
  requestedStartMs: number;
  requestedEndMs: number;
  /** Wall-clock ms of the first and past the last frame actually in the clip (segment boundaries). */
  startMs: number;
  endMs: number;
  contentType: 'video/mp4';
  /** True when the worker stopped before the window was covered. */
  truncated: boolean;
}

export interface ClipWriteResult {
  id: string;
  /** Size and SHA-256 (hex) of what the sink stored. */
  bytes: number;
  sha256: string;
}

export interface ClipSink {
  writeClip(meta: ClipMeta, plaintext: AsyncIterable<Uint8Array> | Uint8Array): Promise<ClipWriteResult>;
}
