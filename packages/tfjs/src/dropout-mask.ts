import { type AttentionInputs, type AttentionParams, dropoutKeepRow } from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import { sequenceLengths } from "./attention-constants.js";

/**
 * Dropout's keep mask divided by (1 - p), float32 [b, h, sq, skv], from core's counter RNG (the same
 * (seed, offset) drops the same elements on every backend). Positions are within each batch entry, so
 * thd calls get the mask of their unpacked sequences. Null when the call has no dropout.
 */
export function dropoutKeepScale(inputs: AttentionInputs<unknown>, p: AttentionParams): tf.Tensor4D | null {
  if (p.dropout <= 0) return null;
  const stream = {
    seed: inputs.dropoutSeed ?? 0,
    offset: inputs.dropoutOffset ?? 0,
    p: p.dropout,
    heads: p.h,
  };
  const lq = sequenceLengths(inputs.cuSeqlensQ, p.b, p.sq);
  const scale = 1 / (1 - p.dropout);
  const keep = new Uint8Array(p.skv);
  const out = new Float32Array(p.b * p.h * p.sq * p.skv);
  for (let b = 0; b < p.b; b++) {
    for (let h = 0; h < p.h; h++) {
      for (let i = 0; i < lq[b]; i++) {
        dropoutKeepRow(stream, b, h, i, p.skv, keep);
        const row = ((b * p.h + h) * p.sq + i) * p.skv;
        for (let j = 0; j < p.skv; j++) out[row + j] = keep[j] * scale;
      }
    }
  }
  return tf.tensor4d(out, [p.b, p.h, p.sq, p.skv], "float32");
}
