import { Encrypter } from 'age-encryption';
import { z } from 'zod';

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
  if (s.startsWith('AGE-SECRET-KEY-')) {
    return 'this is an age secret key; the device must only ever hold the public key (age-keygen -y prints it)';
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

export const ageRecipientSchema = z.string().superRefine((s, ctx) => {
  const problem = ageRecipientProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const MiB = 1024 * 1024;

/**
 * The encrypted clip and snapshot store. Nest it into the daemon config as
 * `store: storeConfigSchema`. Recipients default to none: the owners enrolled by pairing
 * are added at every write (ClipStoreOptions.recipients), and with none at all nothing is stored.
 */
export const storeConfigSchema = z
  .object({
    /** Directory of the `.age` files and `index.json`; created 0700. The daemon defaults it to `<stateDir>/clips`. */
    dir: z.string().min(1).optional(),
    /**
     * The owner's age public keys, besides those enrolled by pairing. Every clip and
     * snapshot is readable by each of them, and only them; with none, nothing is stored.
     */
    recipients: z
      .array(ageRecipientSchema)
      .max(16)
      .default([])
      .refine((rs) => new Set(rs).size === rs.length, 'recipients must be unique'),
    /** Items older than this (by the time they were stored) are deleted. */
    maxAgeS: z
      .number()
      .int()
      .min(1)
      .max(10 * 365 * 86_400)
      .default(14 * 86_400),
    /** The stored files together never exceed this; the oldest go first. */
    maxTotalBytes: z
      .number()
      .int()
      .min(MiB)
      .max(2 ** 50)
      .default(2 * 1024 * MiB),
    /** A single clip's plaintext larger than this is refused (clips are buffered for one retry). */
    maxClipBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * MiB)
      .default(64 * MiB),
    /** Retention also runs on this period (besides after every write). */
    retentionIntervalS: z.number().int().min(1).max(86_400).default(600),
  })
  .strict()
  .refine((c) => c.maxClipBytes * 1.01 + 64 * 1024 <= c.maxTotalBytes, {
    message: 'maxClipBytes (plus encryption overhead) must fit within maxTotalBytes',
    path: ['maxClipBytes'],
  });

export type StoreConfig = z.infer<typeof storeConfigSchema>;
export type StoreConfigInput = z.input<typeof storeConfigSchema>;
