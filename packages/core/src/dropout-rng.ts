/**
 * The dropout mask every backend reproduces: a counter-based generator (Philox-4x32-10, Salmon et al.,
 * "Parallel random numbers: as easy as 1, 2, 3", SC'11) evaluated at a counter made of the element's
 * coordinates, so any kernel (C++, CUDA, WGSL, JS) computes the keep bit of (b, h, i, j) alone, in any
 * order, with 32-bit integer arithmetic only.
 *
 * Mapping (normative; the C++/CUDA/WGSL ports must follow it bit for bit):
 *   key     = (seed mod 2^32, floor(seed / 2^32) mod 2^32)
 *   counter = (floor(j / 4), i, b * h_total + h, offset mod 2^32)
 *   word    = philox4x32_10(counter, key)[j mod 4]
 *   keep    = word >= threshold(p),  threshold(p) = min(floor(p * 2^32), 2^32 - 1)  (p = 0 keeps all)
 * b is the batch entry, h the query head, i and j the query and key positions within the entry (for
 * thd: within the sequence, not the packed row). A kept probability is scaled by 1 / (1 - p).
 * Hosts compute threshold(p) once (dropoutThreshold) and pass it to kernels as a uint32, so no kernel
 * needs float64 to agree on the comparison.
 */

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;

/** The high 32 bits of the 64-bit product of two uint32 (the low half is Math.imul). */
function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const lolo = aLo * bLo;
  const mid1 = aHi * bLo;
  const mid2 = aLo * bHi;
  // Carry out of the low 32 bits: (lolo >>> 16) + low halves of the two middle products.
  const carry = ((lolo >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
  return (aHi * bHi + (mid1 >>> 16) + (mid2 >>> 16) + carry) >>> 0;
}

/** Philox-4x32 with 10 rounds: four uint32 words from a 4-word counter and a 2-word key. */
export function philox4x32(
  counter: readonly [number, number, number, number],
  key: readonly [number, number],
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  let c0 = counter[0] >>> 0;
  let c1 = counter[1] >>> 0;
  let c2 = counter[2] >>> 0;
  let c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + PHILOX_W0) >>> 0;
    k1 = (k1 + PHILOX_W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/** The uint32 a word must reach to be kept, for dropout probability p. */
export function dropoutThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  return Math.min(Math.floor(p * 2 ** 32), 2 ** 32 - 1);
}

/** The key of a seed (any integer up to 2^53). */
export function dropoutKey(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
}

/** Everything that fixes one call's dropout mask. */
export interface DropoutStream {
  readonly seed: number;
  readonly offset: number;
  readonly p: number;
  /** Number of query heads (the h_total of the counter). */
  readonly heads: number;
}

/**
 * Keep bits of one query row: `keep[j]` for j in [0, n). Evaluates one Philox block per 4 keys, which
 * is how kernels should do it too.
 */
export function dropoutKeepRow(
  s: DropoutStream,
  b: number,
  h: number,
  i: number,
  n: number,
  keep: Uint8Array,
): Uint8Array {
  const key = dropoutKey(s.seed);
  const threshold = dropoutThreshold(s.p);
  const words = new Uint32Array(4);
  const bh = (b * s.heads + h) >>> 0;
  const offset = s.offset >>> 0;
  for (let block = 0; block * 4 < n; block++) {
    philox4x32([block, i, bh, offset], key, words);
    for (let w = 0; w < 4 && block * 4 + w < n; w++) keep[block * 4 + w] = words[w] >= threshold ? 1 : 0;
  }
  return keep;
}

/** The keep bit of one element (b, h, i, j). */
export function dropoutKeep(s: DropoutStream, b: number, h: number, i: number, j: number): boolean {
  const words = philox4x32(
    [Math.floor(j / 4), i, (b * s.heads + h) >>> 0, s.offset >>> 0],
    dropoutKey(s.seed),
  );
  return words[j % 4] >= dropoutThreshold(s.p);
}
