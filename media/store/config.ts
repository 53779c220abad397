import { z } from 'zod';
import { ageRecipientProblem } from '../../proto/age-recipient.js';

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
