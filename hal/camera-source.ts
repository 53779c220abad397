/** A GStreamer element spec, built from typed parts (never a concatenated launch string). */
export interface CameraDescription {
  /** The source element's factory name, e.g. `videotestsrc`, `v4l2src`, `libcamerasrc`. */
  element: string;
  /** Element properties; the media worker puts them into the pipeline as they are. */
  properties: Record<string, string | number | boolean>;
}

export type CameraKind = 'sim-test-pattern' | 'file' | 'v4l2' | 'libcamera';

/**
 * Where the media worker's pipeline gets its frames. The HAL only describes
 * the source; the media worker (a separate process) builds and runs the
 * pipeline, so a camera fault can never stop the chime.
 */
export interface CameraSource {
  readonly kind: CameraKind;
  /** The element spec for the pipeline's head. Pure and cheap. */
  describe(): CameraDescription;
  /**
   * Checks that the source can work here (the element exists, the device node
   * is accessible). Throws HalError('unavailable') with the reason otherwise,
   * or HalError('permission'). It does not open the camera for streaming.
   */
  probe(): Promise<void>;
}
