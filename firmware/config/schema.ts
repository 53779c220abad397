import { z } from 'zod';
import { halConfigSchema } from '../../hal/config.js';
import { mediaConfigSchema } from '../../media/config.js';
import { motionConfigSchema } from '../../media/motion/config.js';
import { storeConfigSchema } from '../../media/store/config.js';

const deviceId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{2,62}$/, 'lower-case letters, digits and dashes, 3-63 long (no #, + or /)');

const hubKey = z
  .string()
  .regex(
    /^ed25519:[A-Za-z0-9_-]{43}$/,
    'an Ed25519 public key as printed by `doorbell-hub keygen` (ed25519:...)',
  );

const brokerUrl = z
  .string()
  .refine((s) => /^(mqtt|mqtts):\/\/[^\s/]+(:\d+)?\/?$/.test(s), 'mqtt://host:port or mqtts://host:port');

/**
 * The board daemon's configuration. This schema is the only definition:
 * the `DoorbellConfig` type is derived from it, so the two cannot drift.
 */
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A `media` section that says which camera to use: recording is then what the owner wants. */
function namesACamera(media: Record<string, unknown>): boolean {
  return isObject(media.camera) && media.camera.source !== undefined;
}

export const doorbellConfigSchema = z
  .object({
    /** Defaults to `doorbell-<first 8 hex digits of the identity key id>`. */
    deviceId: deviceId.optional(),
    stateDir: z.string().min(1).default('/var/lib/doorbell'),
    broker: z
      .object({
        url: brokerUrl.default('mqtt://127.0.0.1:1883'),
        username: z.string().max(256).optional(),
        password: z.string().max(256).optional(),
        ca: z.string().optional(),
        cert: z.string().optional(),
        key: z.string().optional(),
        keepaliveS: z.number().int().min(5).max(600).default(30),
        /**
         * How long an event may wait for the broker's PUBACK before the
         * connection is taken as broken, dropped, and the event sent again on
         * a new one.
         */
        ackTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
        reconnect: z
          .object({
            minMs: z.number().int().min(50).max(60_000).default(250),
            maxMs: z.number().int().min(100).max(600_000).default(30_000),
          })
          .strict()
          .default({ minMs: 250, maxMs: 30_000 })
          .refine((r) => r.maxMs >= r.minMs, { message: 'maxMs must be >= minMs', path: ['maxMs'] }),
      })
      .strict()
      .prefault({}),
    trust: z
      .object({
        /**
         * Keys provisioned by whoever writes this file (root on the board),
         * with `hubRole`. Pairing enrols keys without the file; keys listed
         * here cannot be changed by command.
         */
        hubKeys: z.array(hubKey).max(32).default([]),
        hubRole: z.enum(['view', 'operate', 'manage', 'administer']).default('operate'),
        /** How long a button hold opens the pairing window. */
        pairingWindowS: z.number().int().min(30).max(600).default(180),
        /** Holding the button this long, from within 10 s of start-up, factory-resets the doorbell. */
        factoryResetHoldMs: z.number().int().min(1_000).max(120_000).default(30_000),
      })
      .strict()
      .prefault({}),
    events: z
      .object({
        /** Events still undelivered are kept up to this many, oldest dropped first. */
        outboxMax: z.number().int().min(10).max(100_000).default(1_000),
        ttlS: z
          .number()
          .int()
          .min(60)
          .max(30 * 86_400)
          .default(7 * 86_400),
        heartbeatS: z.number().int().min(5).max(3_600).default(60),
      })
      .strict()
      .prefault({}),
    commands: z
      .object({
        /** Signed error replies to senders that are not enrolled, at most this many per second in all. */
        errorRepliesPerS: z.number().int().min(1).max(1_000).default(10),
        /**
         * Answers per second to one enrolled key below Administer (and error answers to any
         * enrolled key); its commands beyond this are dropped unanswered.
         */
        keyRepliesPerS: z.number().int().min(1).max(10_000).default(20),
      })
      .strict()
      .prefault({}),
    ota: z
      .object({
        /**
         * Updates over MQTT (only on a flashed board, DOORBELL_ROOT set): a trial
         * firmware must be connected and have its signed self-test event
         * acknowledged by the broker within this time, or it rolls back.
         */
        trialHealthTimeoutMs: z.number().int().min(1_000).max(600_000).default(60_000),
        /** Largest bundle accepted for staging. */
        maxBundleBytes: z
          .number()
          .int()
          .min(1024)
          .max(256 * 1024 * 1024)
          .default(64 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    hal: halConfigSchema.prefault({}),
    /**
     * The camera half: a supervised media worker records pre-roll clips on
     * presses and motion, encrypted to the owner's footage recipients (those
     * enrolled by pairing plus `store.recipients`). On when the config names a
     * camera (`media.camera.source`), off otherwise, unless `enabled` says;
     * ringing never depends on it.
     */
    media: z
      .preprocess(
        (v) => (isObject(v) && v.enabled === undefined ? { ...v, enabled: namesACamera(v) } : v),
        z
          .object({
            enabled: z.boolean().default(false),
            camera: mediaConfigSchema.prefault({}),
            motion: motionConfigSchema.prefault({}),
            /** Whether motion starts a clip (presses always do). */
            recordMotion: z.boolean().default(true),
            /** `dir` defaults to `<stateDir>/clips`. */
            store: storeConfigSchema.prefault({}),
          })
          .strict(),
      )
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type DoorbellConfig = z.infer<typeof doorbellConfigSchema>;
export type DoorbellConfigInput = z.input<typeof doorbellConfigSchema>;
