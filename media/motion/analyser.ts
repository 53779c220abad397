import type { Logger } from '../../common/logger.js';
import { type GrayFrame, type MotionDetector, type MotionEvent, MotionFrameError } from './detector.js';

/**
 * Adapts a `MotionDetector` to a frame callback (`onFrame(frame): void`, the media worker's
 * `FrameAnalyser` shape): it never throws. A refused frame is logged (the first, then every
 * 100th) and dropped; a timestamp that goes back (the wall clock was set back) resets the
 * detector, ending active motion at the last good time, and the frame is used as the new start.
 */
export class MotionAnalyser {
  private refused = 0;

  constructor(
    private readonly detector: MotionDetector,
    private readonly onEvent: (e: MotionEvent) => void,
    private readonly logger: Logger,
  ) {}

  onFrame(frame: GrayFrame): void {
    let events: readonly MotionEvent[];
    try {
      events = this.detector.process(frame);
    } catch (e) {
      if (!(e instanceof MotionFrameError)) throw e; // a bug, not bad input
      if (e.kind === 'invalid-timestamp' && Number.isFinite(frame.timestampMs)) {
        this.logger.warn(
          { timestampMs: frame.timestampMs },
          'frame time went back; motion detection restarts',
        );
        this.deliver(this.detector.reset());
        this.onFrame(frame);
        return;
      }
      if (this.refused++ % 100 === 0) {
        this.logger.warn({ kind: e.kind, err: e.message, refused: this.refused }, 'motion frame refused');
      }
      return;
    }
    this.deliver(events);
  }

  private deliver(events: readonly MotionEvent[]): void {
    for (const ev of events) {
      try {
        this.onEvent(ev);
      } catch (err) {
        this.logger.error({ err, event: ev.type }, 'motion event listener threw');
      }
    }
  }
}
