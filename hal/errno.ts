import { HalError, type HalErrorKind } from './errors.js';

const kindByCode: Readonly<Record<string, HalErrorKind>> = {
  EACCES: 'permission',
  EPERM: 'permission',
  EBUSY: 'busy',
  ENOENT: 'unavailable',
  ENODEV: 'unavailable',
  ENXIO: 'unavailable',
};

/** The closed kind for an errno code: EACCES/EPERM → permission, EBUSY → busy, ENOENT/ENODEV/ENXIO → unavailable, else io. */
export function kindForErrno(code: string | undefined): HalErrorKind {
  return (code !== undefined && kindByCode[code]) || 'io';
}

/** Wraps a system error (GPIO, device node, socket file) as a HalError with a hint for the common causes. */
export function halErrorFromErrno(err: unknown, device: string, action: string): HalError {
  if (err instanceof HalError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const kind = kindForErrno(code);
  const detail = err instanceof Error ? err.message : String(err);
  const hint =
    kind === 'permission'
      ? ' (check the owner, group and mode; GPIO needs the gpio group, cameras the video group)'
      : kind === 'busy'
        ? ' (another process or a kernel driver holds it)'
        : '';
  return new HalError(kind, device, `${action} failed: ${detail}${hint}`, { cause: err });
}
