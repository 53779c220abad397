import { ReplyWaiter } from '../../common/reply-waiter.js';
import { RigProtocolError } from './errors.js';

/**
 * The product's reply waiter ("waitress") with the rig's timeout error:
 * RigProtocolError('timeout') naming the request's type, its id and how long
 * it waited.
 */
export function rigReplyWaiter<R>(): ReplyWaiter<number, R> {
  return new ReplyWaiter<number, R>({
    timeoutError: (what, id, ms) =>
      new RigProtocolError('timeout', `no reply to ${what} (request #${id}) within ${ms} ms`, {
        requestId: id,
      }),
  });
}
