/**
 * The input generator of the conformance cases (FORMAT.md, "Inputs"): uniform values from a hashed
 * counter, so inputs are regenerated bit-exactly from a case's seed instead of being stored.
 */

/** Chris Wellons' lowbias32 integer hash, on uint32. */
export function lowbias32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Streams of the tensors a case generates. */
export const INPUT_STREAMS = { q: 0, k: 1, v: 2, dO: 3, bias: 4, mask: 5, softmaxOffset: 6 } as const;

/** Elements 0..n-1 of stream `stream` of `seed` as uniforms u in [0, 1) (24-bit resolution). */
export function uniformStream(seed: number, stream: number, n: number): Float64Array {
  const base = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(stream, 0x85ebca77)) >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (lowbias32((base + i) >>> 0) >>> 8) / 2 ** 24;
  return out;
}

/** A tensor's values: float32((2u - 1) * scale), in row-major order of its logical shape. */
export function generateValues(seed: number, stream: number, n: number, scale: number): Float64Array {
  const u = uniformStream(seed, stream, n);
  for (let i = 0; i < n; i++) u[i] = Math.fround((2 * u[i] - 1) * scale);
  return u;
}
