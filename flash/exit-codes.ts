import type { BundleErrorKind } from '../board/manifest.js';

/** doorbell-flash's exit codes. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  signature: 10,
  hardware: 11,
  expired: 12,
  downgrade: 13,
  damaged: 14,
  development: 15,
  space: 20,
  target: 21,
} as const;

export function exitCodeOf(kind: BundleErrorKind): number {
  switch (kind) {
    case 'bad-signature':
    case 'unknown-key':
      return EXIT.signature;
    case 'wrong-hardware':
      return EXIT.hardware;
    case 'expired':
      return EXIT.expired;
    case 'downgrade':
      return EXIT.downgrade;
    case 'development-build':
      return EXIT.development;
    case 'oversized':
    case 'corrupt':
    case 'unsupported-format':
    case 'hash-mismatch':
      return EXIT.damaged;
  }
}
