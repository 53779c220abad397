import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { CameraDescription, CameraSource } from '../camera-source.js';
import { halErrorFromErrno } from '../errno.js';

/**
 * A V4L2 camera (`v4l2src`). A placeholder until the video work: it only
 * checks that the device node can be opened for reading and writing.
 */
export class V4l2Camera implements CameraSource {
  readonly kind = 'v4l2' as const;

  constructor(private readonly device = '/dev/video0') {}

  describe(): CameraDescription {
    return { element: 'v4l2src', properties: { device: this.device } };
  }

  async probe(): Promise<void> {
    try {
      await access(this.device, constants.R_OK | constants.W_OK);
    } catch (err) {
      throw halErrorFromErrno(err, this.device, 'opening the camera device');
    }
  }
}
