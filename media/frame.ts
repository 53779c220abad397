/**
 * A grayscale frame from the motion branch (GRAY8, row-major; GStreamer pads each
 * row to a multiple of 4 bytes, hence `stride`). Matches media/motion's GrayFrame.
 */
export interface GrayFrame {
  width: number;
  height: number;
  stride: number;
  /** Wall-clock ms when the worker received it. */
  timestampMs: number;
  data: Uint8Array;
}

/** The motion detector plugs in here; it is called on the control plane's loop, so keep it cheap. */
export interface FrameAnalyser {
  onFrame(frame: GrayFrame): void;
}

/** A JPEG snapshot; `id` is unique within the process. */
export interface Snapshot {
  id: string;
  tsMs: number;
  bytes: Uint8Array;
}

/** GStreamer's row stride for GRAY8: the width rounded up to 4 bytes. */
export const grayStride = (width: number): number => Math.ceil(width / 4) * 4;
