import { verifyInclusion } from './merkle.js';
import { MAX_NOTE_BYTES, NoteError, type NoteVerifier, openNote, parseCheckpoint } from './note.js';

/**
 * C2SP tlog-proof (https://c2sp.org/tlog-proof): an offline-verifiable proof
 * that an entry is in a log, as text: the header line, an optional `extra`
 * line, `index <n>`, the RFC 6962 inclusion proof one base64 hash a line, an
 * empty line, then the log's signed checkpoint verbatim.
 */

const HEADER = 'c2sp.org/tlog-proof@v1';
/** 63 hashes cover any tree of up to 2^63 leaves. */
const MAX_HASHES = 63;
export const MAX_PROOF_BYTES = MAX_NOTE_BYTES + 4096;

export class ProofError extends Error {
  override readonly name = 'ProofError';
}

export interface TlogProof {
  index: number;
  hashes: Buffer[];
  /** The checkpoint as a signed note. */
  checkpoint: string;
  /** Opaque, unauthenticated extra data. */
  extra?: Buffer;
}

export function formatProof(p: TlogProof): string {
  if (!Number.isSafeInteger(p.index) || p.index < 0)
    throw new ProofError('the index is a non-negative integer');
  const lines = [HEADER];
  if (p.extra !== undefined) lines.push(`extra ${p.extra.toString('base64')}`);
  lines.push(`index ${p.index}`);
  for (const h of p.hashes) {
    if (h.length !== 32) throw new ProofError('each proof hash is 32 bytes');
    lines.push(h.toString('base64'));
  }
  return `${lines.join('\n')}\n\n${p.checkpoint}`;
}

/** Parses a proof strictly; anything else is a ProofError. */
export function parseProof(text: string): TlogProof {
  if (Buffer.byteLength(text, 'utf8') > MAX_PROOF_BYTES) throw new ProofError('a proof is at most 20 KiB');
  const split = text.indexOf('\n\n');
  if (split < 0) throw new ProofError('no empty line before the checkpoint');
  const lines = text.slice(0, split).split('\n');
  const checkpoint = text.slice(split + 2);
  if (lines.shift() !== HEADER) throw new ProofError(`the first line must be ${HEADER}`);
  let extra: Buffer | undefined;
  if (lines[0]?.startsWith('extra ')) {
    const b = (lines.shift() as string).slice(6);
    extra = Buffer.from(b, 'base64');
    if (extra.toString('base64') !== b) throw new ProofError('extra is not canonical base64');
  }
  const indexLine = lines.shift() ?? '';
  const m = /^index (0|[1-9][0-9]{0,15})$/.exec(indexLine);
  if (!m || !Number.isSafeInteger(Number(m[1]))) throw new ProofError('an "index <n>" line must follow');
  if (lines.length > MAX_HASHES) throw new ProofError(`at most ${MAX_HASHES} proof hashes`);
  const hashes = lines.map((l) => {
    const h = Buffer.from(l, 'base64');
    if (h.length !== 32 || h.toString('base64') !== l)
      throw new ProofError('each proof line is base64 of 32 bytes');
    return h;
  });
  return { index: Number(m[1]), hashes, checkpoint, ...(extra ? { extra } : {}) };
}

/**
 * Verifies that `leaf` (the RFC 6962 leaf hash of the entry) is at the
 * proof's index in the tree its checkpoint commits to, that the checkpoint
 * is signed by `verifier` and names `origin`. Returns the tree size.
 * Throws ProofError (or NoteError for the checkpoint) when anything fails.
 */
export function verifyProof(text: string, leaf: Uint8Array, verifier: NoteVerifier, origin: string): number {
  const p = parseProof(text);
  let size: number;
  let root: Buffer;
  try {
    const c = parseCheckpoint(openNote(p.checkpoint, verifier));
    if (c.origin !== origin)
      throw new ProofError(`the checkpoint is of another log (${c.origin.slice(0, 120)})`);
    size = c.size;
    root = c.root;
  } catch (err) {
    if (err instanceof NoteError) throw new ProofError(`the checkpoint does not verify: ${err.message}`);
    throw err;
  }
  try {
    verifyInclusion(p.index, size, leaf, p.hashes, root);
  } catch (err) {
    throw new ProofError(
      `the entry is not at index ${p.index} of the signed tree: ${(err as Error).message}`,
    );
  }
  return size;
}
