/**
 * The closed set of ways a HAL operation can fail. Generic code (the doorbell
 * state machine, the CLI) matches on `kind`, never on message text.
 *
 * - `unavailable`: the device or the facility behind it does not exist here
 *   (no `/sys/class/gpio`, no such GPIO chip, no camera, `ENOENT`).
 * - `permission`: the operating system refused access (`EACCES`, `EPERM`);
 *   usually the user is not in the `gpio` or `video` group.
 * - `busy`: another owner holds the device (`EBUSY`, a socket already served).
 * - `invalid-config`: the configuration cannot work on this machine (a line
 *   beyond the chip's `ngpio`, an ambiguous chip label, invalid options).
 * - `io`: an operation failed while the device was in use (a write or read
 *   error, a refused request).
 * - `closed`: the object was used after `close()`.
 * - `timeout`: no answer within the time budget of the operation.
 */
export type HalErrorKind =
  | 'unavailable'
  | 'permission'
  | 'busy'
  | 'invalid-config'
  | 'io'
  | 'closed'
  | 'timeout';

/** The only error type a fallible HAL operation throws; anything else is wrapped with `cause`. */
export class HalError extends Error {
  override readonly name = 'HalError';
  readonly kind: HalErrorKind;
  /** Name of the device or line that failed, e.g. `button` or `gpiochip512:17`. */
  readonly device: string;

  constructor(kind: HalErrorKind, device: string, message: string, options?: { cause?: unknown }) {
    super(`${device}: ${message}`, options);
    this.kind = kind;
    this.device = device;
  }
}

/** True when `err` is a HalError, optionally of the given kind. */
export function isHalError(err: unknown, kind?: HalErrorKind): err is HalError {
  return err instanceof HalError && (kind === undefined || err.kind === kind);
}

/** Returns `err` when it already is a HalError, otherwise wraps it with the given kind. */
export function asHalError(err: unknown, kind: HalErrorKind, device: string, action: string): HalError {
  if (err instanceof HalError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new HalError(kind, device, `${action} failed: ${detail}`, { cause: err });
}
