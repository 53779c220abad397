import { createHash } from 'node:crypto';

/**
 * Merkle tree hashing and proofs of RFC 6962 (section 2.1), as RFC 9162
 * (section 2.1) restates them: the tree behind the device's transparency log.
 * Leaves and nodes are SHA-256 with one-byte domain separation, so a leaf can
 * never pass for a node. Proof verification follows RFC 9162's algorithms and
 * refuses anything it cannot fully check (a wrong length, an index outside
 * the tree, a consistency proof from the empty tree).
 */

export const HASH_BYTES = 32;

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer = sha256();

/** MTH({d}) = SHA-256(0x00 || d). */
export function leafHash(entry: Uint8Array): Buffer {
  return sha256(LEAF_PREFIX, entry);
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(NODE_PREFIX, left, right);
}

/** A proof or a root that cannot be checked, or does not check out. */
export class MerkleProofError extends Error {
  override readonly name = 'MerkleProofError';
}

/** The largest power of two smaller than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function checkSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new MerkleProofError(`${name} must be a non-negative integer, got ${n}`);
}

/** MTH(D[n]) over leaf hashes (not entries), computed from scratch. */
export function rootOf(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  return subtreeRoot(leaves, 0, leaves.length);
}

function subtreeRoot(leaves: readonly Uint8Array[], start: number, end: number): Buffer {
  const n = end - start;
  if (n === 1) return Buffer.from(leaves[start] as Uint8Array);
  const k = splitPoint(n);
  return nodeHash(subtreeRoot(leaves, start, start + k), subtreeRoot(leaves, start + k, end));
}

/** PATH(m, D[n]): the audit path of leaf `index` in the tree of `leaves` (RFC 6962 2.1.1). */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Buffer[] {
  checkSize('index', index);
  if (index >= leaves.length)
    throw new MerkleProofError(`index ${index} is not in a tree of ${leaves.length}`);
  const path = (m: number, start: number, end: number): Buffer[] => {
    const n = end - start;
    if (n === 1) return [];
    const k = splitPoint(n);
    return m < k
      ? [...path(m, start, start + k), subtreeRoot(leaves, start + k, end)]
      : [...path(m - k, start + k, end), subtreeRoot(leaves, start, start + k)];
  };
  return path(index, 0, leaves.length);
}

/** PROOF(m, D[n]): that the first `size1` leaves are a prefix of all of them (RFC 6962 2.1.2). */
export function consistencyProof(leaves: readonly Uint8Array[], size1: number): Buffer[] {
  checkSize('size1', size1);
  if (size1 === 0 || size1 > leaves.length)
    throw new MerkleProofError(`no consistency proof from ${size1} to ${leaves.length}`);
  const sub = (m: number, start: number, end: number, complete: boolean): Buffer[] => {
    const n = end - start;
    if (m === n) return complete ? [] : [subtreeRoot(leaves, start, end)];
    const k = splitPoint(n);
    return m <= k
      ? [...sub(m, start, start + k, complete), subtreeRoot(leaves, start + k, end)]
      : [...sub(m - k, start + k, end, false), subtreeRoot(leaves, start, start + k)];
  };
  return sub(size1, 0, leaves.length, true);
}

const equal = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

function checkHash(name: string, h: Uint8Array): void {
  if (h.length !== HASH_BYTES) throw new MerkleProofError(`${name} is ${h.length} bytes, not ${HASH_BYTES}`);
}

/**
 * Checks that `leaf` (a leaf hash) is entry `index` of the tree of `size`
 * with root `root` (RFC 9162 2.1.3.2). Throws MerkleProofError if not.
 */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkSize('index', index);
  checkSize('size', size);
  if (index >= size) throw new MerkleProofError(`index ${index} is not in a tree of ${size}`);
  checkHash('the leaf hash', leaf);
  checkHash('the root', root);
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const [i, p] of proof.entries()) {
    checkHash(`proof node ${i}`, p);
    if (sn === 0) throw new MerkleProofError('the proof is longer than the path to the root');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new MerkleProofError('the proof is shorter than the path to the root');
  if (!equal(r, root)) throw new MerkleProofError('the proof leads to another root');
}

/**
 * Checks that the tree of `size1` with `root1` is a prefix of the tree of
 * `size2` with `root2` (RFC 9162 2.1.4.2): an append-only log. Throws
 * MerkleProofError if not.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  checkSize('size1', size1);
  checkSize('size2', size2);
  checkHash('root1', root1);
  checkHash('root2', root2);
  if (size2 < size1) throw new MerkleProofError(`the log shrank from ${size1} to ${size2} entries`);
  if (size1 === 0) throw new MerkleProofError('a consistency proof from the empty tree proves nothing');
  if (size1 === size2) {
    if (proof.length > 0) throw new MerkleProofError('equal sizes need an empty proof');
    if (!equal(root1, root2)) throw new MerkleProofError('equal sizes with different roots');
    return;
  }
  if (proof.length === 0) throw new MerkleProofError('the proof is empty');
  for (const [i, p] of proof.entries()) checkHash(`proof node ${i}`, p);
  // A first tree that is a complete subtree is its own first node.
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(path[0] as Uint8Array);
  let sr: Buffer = Buffer.from(path[0] as Uint8Array);
  for (const c of path.slice(1)) {
    if (sn === 0) throw new MerkleProofError('the proof is longer than the path to the root');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new MerkleProofError('the proof is shorter than the path to the root');
  if (!equal(fr, root1)) throw new MerkleProofError('the proof does not lead to the first root');
  if (!equal(sr, root2)) throw new MerkleProofError('the proof does not lead to the second root');
}
