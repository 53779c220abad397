export type StoreErrorKind =
  | 'not-started'
  | 'no-recipients'
  | 'invalid-meta'
  | 'too-large'
  | 'storage-full'
  | 'source-failed'
  | 'io';

/** The only error `writeClip`/`writeSnapshot` reject with. No partial file is left behind. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
