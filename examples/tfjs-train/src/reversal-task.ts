import * as tf from "@tensorflow/tfjs";

/** A small seeded PRNG (mulberry32), so batches are reproducible without tfjs's global RNG. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Sequence reversal: the target at position i is the input token at position s-1-i. A model can only
 * solve it by attending from each position to its mirror, so it exercises attention (an MLP per
 * position sees one token and cannot).
 */
export function reversalBatch(random: () => number, batch: number, seqLen: number, vocab: number) {
  const data = new Int32Array(batch * seqLen);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * vocab);
  const inputs = tf.tensor2d(data, [batch, seqLen], "int32");
  const targets = tf.reverse(inputs, 1) as tf.Tensor2D;
  return { inputs, targets };
}
