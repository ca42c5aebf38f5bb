import type { AttentionInputs, AttentionParams } from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import { sequenceLengths } from "./attention-constants.js";

/**
 * The attention graph works batch-first ([b, s, heads, d]). These convert q/k/v from the call's format
 * and o back to it with differentiable tf ops (transpose, gather), so gradients come back in the
 * caller's format by autodiff: sbhd is a transpose; thd slices each sequence's tokens out of the
 * packed tensor and pads them to the batch's max length, and back (slice, pad and concat have cheap
 * gradients, unlike gather's segment sums on tfjs's cpu backend).
 */
type Side = "q" | "kv";

/** Where each sequence starts in the packed thd tensor: cu_seqlens_*_padded when given, else cu_seqlens_*. */
function sequenceStarts(inputs: AttentionInputs<unknown>, side: Side): Int32Array {
  const padded = side === "q" ? inputs.cuSeqlensQPadded : inputs.cuSeqlensKvPadded;
  const cu = side === "q" ? inputs.cuSeqlensQ : inputs.cuSeqlensKv;
  // validation guarantees cu_seqlens for thd
  return (padded ?? cu) as Int32Array;
}

function lengthsOf(inputs: AttentionInputs<unknown>, p: AttentionParams, side: Side): Int32Array {
  return side === "q"
    ? sequenceLengths(inputs.cuSeqlensQ, p.b, p.sq)
    : sequenceLengths(inputs.cuSeqlensKv, p.b, p.skv);
}

export function toBatchFirst(
  x: tf.Tensor,
  side: Side,
  inputs: AttentionInputs<unknown>,
  p: AttentionParams,
): tf.Tensor4D {
  if (p.qkvFormat === "bshd") return x as tf.Tensor4D;
  if (p.qkvFormat === "sbhd") return tf.transpose(x, [1, 0, 2, 3]) as tf.Tensor4D;
  const s = side === "q" ? p.sq : p.skv;
  const [, heads, d] = x.shape as [number, number, number];
  const starts = sequenceStarts(inputs, side);
  const lengths = lengthsOf(inputs, p, side);
  const sequences: tf.Tensor[] = [];
  for (let bi = 0; bi < p.b; bi++) {
    const tokens = tf.slice(x, [starts[bi], 0, 0], [lengths[bi], heads, d]);
    sequences.push(
      tf.pad(tokens, [
        [0, s - lengths[bi]],
        [0, 0],
        [0, 0],
      ]),
    );
  }
  return tf.stack(sequences) as tf.Tensor4D;
}

/** o [b, sq, h, dv] back to q's format; for thd, rows of the packed tensor outside every sequence are 0. */
export function fromBatchFirst(
  o: tf.Tensor4D,
  inputs: AttentionInputs<unknown>,
  p: AttentionParams,
): tf.Tensor {
  if (p.qkvFormat === "bshd") return o;
  if (p.qkvFormat === "sbhd") return tf.transpose(o, [1, 0, 2, 3]);
  const [b, , h, dv] = o.shape;
  const starts = sequenceStarts(inputs, "q");
  const lengths = lengthsOf(inputs, p, "q");
  const pieces: tf.Tensor[] = [];
  let row = 0;
  for (let bi = 0; bi < b; bi++) {
    if (starts[bi] > row) pieces.push(tf.zeros([starts[bi] - row, h, dv]));
    pieces.push(tf.reshape(tf.slice(o, [bi, 0, 0, 0], [1, lengths[bi], h, dv]), [lengths[bi], h, dv]));
    row = starts[bi] + lengths[bi];
  }
  if (p.tq > row) pieces.push(tf.zeros([p.tq - row, h, dv]));
  return tf.concat(pieces, 0);
}
