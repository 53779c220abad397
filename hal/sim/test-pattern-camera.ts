import type { CameraDescription, CameraSource } from '../camera-source.js';
import { HalError } from '../errors.js';
import { type ElementCheck, gstInspectCheck } from '../gst-element-check.js';

/**
 * The sim camera: GStreamer's `videotestsrc` with the moving `ball` pattern,
 * so motion detection has something to see. Live, so it paces like a camera.
 */
export class TestPatternCamera implements CameraSource {
  readonly kind = 'sim-test-pattern' as const;

  constructor(private readonly elementExists: ElementCheck = gstInspectCheck) {}

  describe(): CameraDescription {
    return { element: 'videotestsrc', properties: { pattern: 'ball', 'is-live': true } };
  }

  async probe(): Promise<void> {
    const { element } = this.describe();
    if (!(await this.elementExists(element))) {
      throw new HalError(
        'unavailable',
        element,
        'GStreamer element not installed (gst-plugins-base provides it)',
      );
    }
  }
}
