import { createHash, sign, verify } from 'node:crypto';
import { open } from 'node:fs/promises';
import { z } from 'zod';
import { keyIdOf, type SigningKey, type VerifyKey } from '../proto/keys.js';

/**
 * The firmware bundle container and its signed manifest.
 *
 * Layout (all integers big-endian), one file:
 *
 *   0   8   magic "ODBUNDLE"
 *   8   4   container version (1)
 *   12  4   manifest length M (1 .. MAX_MANIFEST_BYTES)
 *   16  8   release key id (the first 8 bytes of SHA-256 over the raw public key)
 *   24  64  Ed25519 signature over SIGNING_CONTEXT || manifest bytes
 *   88  M   manifest: UTF-8 JSON (see `manifestSchema`)
 *   88+M    payload: every file's bytes, concatenated in manifest order
 *
 * The bundle's length must be exactly 88 + M + the sum of the file sizes.
 * The signature covers the manifest bytes exactly as stored: they are verified
 * before they are parsed and never re-serialised. Every file's size and
 * SHA-256 are in the manifest, so the signature covers the whole bundle.
 */

export const MAGIC = Buffer.from('ODBUNDLE', 'latin1');
export const CONTAINER_VERSION = 1;
export const MANIFEST_FORMAT = 1;
export const HEADER_BYTES = 88;
/** Domain separation: a manifest signature can never be mistaken for any other Ed25519 signature. */
export const SIGNING_CONTEXT = Buffer.from('open-doorbell/bundle-manifest/v1\0', 'latin1');

export const MAX_BUNDLE_BYTES = 256 * 1024 * 1024;
export const MAX_MANIFEST_BYTES = 1024 * 1024;
export const MAX_FILES = 4096;
export const MAX_FILE_BYTES = 128 * 1024 * 1024;
export const MAX_PATH_CHARS = 255;

/** Why a bundle was refused: a closed set. */
export type BundleErrorKind =
  | 'oversized'
  | 'corrupt'
  | 'unsupported-format'
  | 'unknown-key'
  | 'bad-signature'
  | 'wrong-hardware'
  | 'expired'
  | 'development-build'
  | 'downgrade'
  | 'hash-mismatch';

export const BUNDLE_ERROR_KINDS: readonly BundleErrorKind[] = [
  'oversized',
  'corrupt',
  'unsupported-format',
  'unknown-key',
  'bad-signature',
  'wrong-hardware',
  'expired',
  'development-build',
  'downgrade',
  'hash-mismatch',
];

export class BundleError extends Error {
  override readonly name = 'BundleError';
  constructor(
    readonly kind: BundleErrorKind,
    message: string,
  ) {
    super(`${kind}: ${message}`);
  }
}

export const isBundleError = (err: unknown): err is BundleError => err instanceof BundleError;

const segment = /^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*$/;
/** A relative path of plain segments: no '', '.', '..', absolute paths, backslashes or hidden names. */
export const bundlePathSchema = z
  .string()
  .min(1)
  .max(MAX_PATH_CHARS)
  .refine((p) => p.split('/').every((s) => segment.test(s) && s !== '..'), 'not a plain relative path');

export const HARDWARE_PATTERN = /^[a-z0-9][a-z0-9-]{0,30}\/[a-z0-9][a-z0-9-]{0,30}$/;

const fileSchema = z
  .object({
    path: bundlePathSchema,
    size: z.number().int().min(0).max(MAX_FILE_BYTES),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    executable: z.boolean(),
  })
  .strict();

export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    /** e.g. `open-doorbell/rpi-arm64`; must equal the board's string exactly. */
    hardware: z.string().regex(HARDWARE_PATTERN),
    version: z.string().regex(/^\d{1,6}\.\d{1,6}\.\d{1,6}(-[0-9A-Za-z.-]{1,40})?$/),
    /** Anti-rollback: a board never accepts a bundle with a lower counter than the one committed. */
    securityCounter: z.number().int().min(0).max(0x7fff_ffff),
    createdAtMs: z.number().int().min(0).max(8.64e15),
    expiresAtMs: z.number().int().min(0).max(8.64e15),
    development: z.boolean(),
    /** The daemon's entry point, one of `files`. */
    entry: bundlePathSchema,
    files: z.array(fileSchema).min(1).max(MAX_FILES),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.expiresAtMs <= m.createdAtMs) ctx.addIssue({ code: 'custom', message: 'expires before created' });
    const paths = new Set<string>();
    for (const f of m.files) {
      if (paths.has(f.path)) ctx.addIssue({ code: 'custom', message: `duplicate path ${f.path}` });
      paths.add(f.path);
    }
    // A file may not also be a directory of another file.
    for (const f of m.files) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (paths.has(dir))
          ctx.addIssue({ code: 'custom', message: `${dir} is both a file and a directory` });
      }
    }
    if (!paths.has(m.entry)) ctx.addIssue({ code: 'custom', message: `entry ${m.entry} is not a file` });
    const total = m.files.reduce((n, f) => n + f.size, 0);
    if (total > MAX_BUNDLE_BYTES) ctx.addIssue({ code: 'custom', message: 'files exceed the bundle cap' });
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestFile = Manifest['files'][number];

/** Random access to a bundle's bytes (a file, or a buffer in tests). */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export function bufferSource(buf: Uint8Array): ByteSource {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    size: b.length,
    read: async (offset, length) => Buffer.from(b.subarray(offset, offset + length)),
  };
}

/** Opens a bundle file for random access; the caller must `close()` it. */
export async function openFileSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const handle = await open(path, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new BundleError('corrupt', `${path} is not a regular file`);
    return {
      size: stat.size,
      async read(offset, length) {
        const buf = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
          if (bytesRead === 0) throw new BundleError('corrupt', 'bundle file shrank while being read');
          done += bytesRead;
        }
        return buf;
      },
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** What the verifier needs to know about the board and its history. */
export interface TrustPolicy {
  /** Trusted release keys by key id. */
  keys: ReadonlyMap<string, VerifyKey>;
  /** The board's hardware compatibility string. */
  hardware: string;
  /** Trusted time: the later of the clock and the committed bundle's creation time. */
  nowMs: number;
  /** The committed security counter; a lower one is a downgrade. */
  minSecurityCounter: number;
  /** Accept bundles marked as development builds. */
  allowDevelopment: boolean;
}

export const keyMap = (keys: Iterable<VerifyKey>): Map<string, VerifyKey> =>
  new Map([...keys].map((k) => [k.keyId, k]));

/** A bundle whose signature and policy checks passed; `payloadOffset` is where the first file starts. */
export interface SignedManifest {
  readonly manifest: Manifest;
  /** The exact stored manifest bytes. */
  readonly manifestBytes: Buffer;
  /** Header and manifest as stored: a slot keeps them to re-verify itself. */
  readonly headerAndManifest: Buffer;
  readonly keyId: string;
  readonly payloadOffset: number;
  /** Each file's offset in the bundle, in manifest order. */
  readonly offsets: readonly number[];
}

/**
 * The container's extent from its first HEADER_BYTES: how many bytes the header and the
 * signed manifest take together, i.e. what must have arrived before the signature can be
 * checked. Undefined when the bytes are not a bundle header (bad magic, a manifest length
 * of 0 or above the cap): `verifyManifest` then says exactly why.
 */
export function headerExtent(header: Uint8Array): number | undefined {
  if (header.length < HEADER_BYTES) return undefined;
  const b = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  if (!b.subarray(0, 8).equals(MAGIC)) return undefined;
  const manifestLength = b.readUInt32BE(12);
  if (manifestLength === 0 || manifestLength > MAX_MANIFEST_BYTES) return undefined;
  return HEADER_BYTES + manifestLength;
}

/**
 * Checks the header, the signature and the policy (but not the file hashes):
 * size cap -> magic and container version -> manifest length cap -> key lookup
 * -> signature over the stored bytes -> JSON and schema -> exact length ->
 * hardware -> expiry -> development flag -> security counter. `headerOnly`:
 * `src` holds only the header and manifest (a slot's stored copy).
 */
export async function verifyManifest(
  src: ByteSource,
  policy: TrustPolicy,
  options: { headerOnly?: boolean } = {},
): Promise<SignedManifest> {
  if (src.size > MAX_BUNDLE_BYTES) {
    throw new BundleError('oversized', `bundle is ${src.size} bytes; the cap is ${MAX_BUNDLE_BYTES}`);
  }
  if (src.size < HEADER_BYTES) throw new BundleError('corrupt', `bundle is only ${src.size} bytes`);
  const header = await src.read(0, HEADER_BYTES);
  if (!header.subarray(0, 8).equals(MAGIC))
    throw new BundleError('corrupt', 'not a firmware bundle (bad magic)');
  const container = header.readUInt32BE(8);
  if (container !== CONTAINER_VERSION) {
    throw new BundleError('unsupported-format', `container version ${container}; this tool reads 1`);
  }
  const manifestLength = header.readUInt32BE(12);
  if (manifestLength === 0) throw new BundleError('corrupt', 'empty manifest');
  if (manifestLength > MAX_MANIFEST_BYTES) {
    throw new BundleError(
      'oversized',
      `manifest is ${manifestLength} bytes; the cap is ${MAX_MANIFEST_BYTES}`,
    );
  }
  if (HEADER_BYTES + manifestLength > src.size)
    throw new BundleError('corrupt', 'bundle ends inside the manifest');
  const keyId = header.subarray(16, 24).toString('hex');
  const key = policy.keys.get(keyId);
  if (!key)
    throw new BundleError('unknown-key', `signed by release key ${keyId}, which this board does not trust`);
  const signature = header.subarray(24, 88);
  const manifestBytes = await src.read(HEADER_BYTES, manifestLength);
  if (!verify(null, Buffer.concat([SIGNING_CONTEXT, manifestBytes]), key.publicKey, signature)) {
    throw new BundleError(
      'bad-signature',
      `the manifest signature does not verify with release key ${keyId}`,
    );
  }
  const manifest = parseManifestBytes(manifestBytes);
  const payloadOffset = HEADER_BYTES + manifestLength;
  const offsets: number[] = [];
  let at = payloadOffset;
  for (const f of manifest.files) {
    offsets.push(at);
    at += f.size;
  }
  if (!options.headerOnly && at !== src.size) {
    throw new BundleError('corrupt', `bundle is ${src.size} bytes; its manifest describes ${at}`);
  }
  checkPolicy(manifest, policy);
  return {
    manifest,
    manifestBytes,
    headerAndManifest: Buffer.concat([header, manifestBytes]),
    keyId,
    payloadOffset,
    offsets,
  };
}

/** Parses signed manifest bytes; only call it on bytes whose signature verified. */
export function parseManifestBytes(bytes: Buffer): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new BundleError('corrupt', `manifest is not UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof json === 'object' && json !== null && 'format' in json && json.format !== MANIFEST_FORMAT) {
    throw new BundleError('unsupported-format', `manifest format ${String(json.format)}; this tool reads 1`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new BundleError('corrupt', `manifest is invalid: ${problems.slice(0, 5).join('; ')}`);
  }
  return parsed.data;
}

export function checkPolicy(manifest: Manifest, policy: TrustPolicy): void {
  if (manifest.hardware !== policy.hardware) {
    throw new BundleError(
      'wrong-hardware',
      `bundle is for '${manifest.hardware}'; this board is '${policy.hardware}'`,
    );
  }
  if (manifest.expiresAtMs <= policy.nowMs) {
    throw new BundleError('expired', `bundle expired at ${new Date(manifest.expiresAtMs).toISOString()}`);
  }
  if (manifest.development && !policy.allowDevelopment) {
    throw new BundleError(
      'development-build',
      'bundle is a development build; this board accepts release builds only',
    );
  }
  if (manifest.securityCounter < policy.minSecurityCounter) {
    throw new BundleError(
      'downgrade',
      `bundle security counter ${manifest.securityCounter} is below the committed ${policy.minSecurityCounter}`,
    );
  }
}

const CHUNK = 1024 * 1024;

/**
 * Streams one file's bytes from the bundle, checking size and SHA-256 at the
 * end; `onChunk` sees every chunk (e.g. to write it). Throws `hash-mismatch`.
 */
export async function streamFile(
  src: ByteSource,
  file: ManifestFile,
  offset: number,
  onChunk?: (chunk: Buffer) => Promise<void> | void,
): Promise<void> {
  const hash = createHash('sha256');
  for (let done = 0; done < file.size; ) {
    const n = Math.min(CHUNK, file.size - done);
    const chunk = await src.read(offset + done, n);
    hash.update(chunk);
    if (onChunk) await onChunk(chunk);
    done += n;
  }
  if (hash.digest('hex') !== file.sha256) {
    throw new BundleError('hash-mismatch', `${file.path} does not match its SHA-256 in the manifest`);
  }
}

/** Full verification: `verifyManifest` and then every file's hash. Reads the whole bundle once. */
export async function verifyBundle(
  src: ByteSource,
  policy: TrustPolicy,
  onProgress?: (done: number, total: number) => void,
): Promise<SignedManifest> {
  const signed = await verifyManifest(src, policy);
  const total = src.size;
  let done = signed.payloadOffset;
  onProgress?.(done, total);
  for (const [i, f] of signed.manifest.files.entries()) {
    await streamFile(src, f, signed.offsets[i] ?? 0, (c) => {
      done += c.length;
      onProgress?.(done, total);
    });
  }
  return signed;
}

export interface BundleInputFile {
  path: string;
  data: Uint8Array;
  executable?: boolean;
}

export interface BundleMeta {
  hardware: string;
  version: string;
  securityCounter: number;
  createdAtMs: number;
  expiresAtMs: number;
  development: boolean;
  entry: string;
}

/** Builds and signs a bundle in memory. Throws (a ZodError) if the manifest would be invalid. */
export function buildBundle(files: readonly BundleInputFile[], meta: BundleMeta, key: SigningKey): Buffer {
  const manifest: Manifest = manifestSchema.parse({
    format: MANIFEST_FORMAT,
    ...meta,
    files: files.map((f) => ({
      path: f.path,
      size: f.data.length,
      sha256: createHash('sha256').update(f.data).digest('hex'),
      executable: f.executable ?? false,
    })),
  });
  return signManifestAndPack(Buffer.from(JSON.stringify(manifest), 'utf8'), files, key);
}

/** Packs given manifest bytes (signed as they are) with payload files; tests use it to craft bundles. */
export function signManifestAndPack(
  manifestBytes: Buffer,
  files: readonly { data: Uint8Array }[],
  key: SigningKey,
): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(CONTAINER_VERSION, 8);
  header.writeUInt32BE(manifestBytes.length, 12);
  Buffer.from(keyIdOf(key.publicRaw), 'hex').copy(header, 16);
  sign(null, Buffer.concat([SIGNING_CONTEXT, manifestBytes]), key.privateKey).copy(header, 24);
  return Buffer.concat([header, manifestBytes, ...files.map((f) => Buffer.from(f.data))]);
}
