import { createHash } from 'node:crypto';
import { Encrypter } from 'age-encryption';

/**
 * Footage recipients travel in Pair and SetRecipients: the hub checks them before it
 * signs anything, the doorbell again before it stores them, with this one function.
 */

/** age X25519 recipient: "age1" + 58 bech32 characters (32-byte key + checksum), lower case. */
const X25519_RECIPIENT = /^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/;

/**
 * Checks that `s` is an age X25519 public key (`age1...`, as printed by `age-keygen` or
 * `age-keygen -y`). Returns a message saying what is wrong, or undefined when it is valid.
 * Post-quantum (`age1pq1...`) and tag recipients are refused: the Debian `age` 1.1 command
 * owners use to decrypt cannot read them.
 */
export function ageRecipientProblem(s: string): string | undefined {
  if (/^age1(pq|tag|tagpq)1/.test(s)) {
    return 'post-quantum and tag age recipients are not supported (age 1.1 cannot decrypt them); use an X25519 key (age1...)';
  }
  if (s.toUpperCase().startsWith('AGE-SECRET-KEY-')) {
    return 'this is an age secret key; give the public key instead (`age-keygen -y KEYFILE` prints it); the secret key stays with its owner';
  }
  if (!X25519_RECIPIENT.test(s)) {
    return 'not an age X25519 public key: expected "age1" followed by 58 lower-case bech32 characters';
  }
  try {
    new Encrypter().addRecipient(s); // checks the bech32 checksum and the key length
  } catch {
    return 'not an age X25519 public key: bad bech32 checksum';
  }
  return undefined;
}

/**
 * How to show a recipient the user gave in an error without echoing a secret:
 * a pasted `AGE-SECRET-KEY-1...` is shown by its prefix only.
 */
export function recipientForDisplay(s: string): string {
  if (s.toUpperCase().startsWith('AGE-SECRET-KEY-')) return 'AGE-SECRET-KEY-1…';
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A recipient's fingerprint: 16 lower-case hex digits. */
export const RECIPIENT_FINGERPRINT = /^[0-9a-f]{16}$/;

/**
 * Names a footage recipient in listings without repeating the whole key: the
 * first 8 bytes of SHA-256 over its text (`age1...`), in hex. An owner finds
 * theirs with `printf %s age1... | sha256sum | cut -c1-16`.
 */
export function recipientFingerprint(recipient: string): string {
  return createHash('sha256').update(recipient, 'utf8').digest('hex').slice(0, 16);
}
