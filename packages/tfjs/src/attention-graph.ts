import type { AttentionParams } from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import type { AttentionConstants } from "./attention-constants.js";
import { stopGradient } from "./stop-gradient.js";

/** Batch-first operands of the graph; bias and softmaxOffset are differentiable like q, k, v. */
export interface GraphOperands {
  /** [b, sq, h, d] */
  readonly q: tf.Tensor4D;
  /** [b, skv, hg, d] */
  readonly k: tf.Tensor4D;
  /** [b, skv, hg, dv] */
  readonly v: tf.Tensor4D;
  /** [b|1, h|1, sq, skv] for pre/post_scale_bias. */
  readonly bias?: tf.Tensor;
  /** [h] for the learnable softmax. */
  readonly softmaxOffset?: tf.Tensor;
  /** Dropout's keep mask already divided by (1 - p), [b, h, sq, skv]; absent without dropout. */
  readonly dropoutScale?: tf.Tensor;
}

export interface GraphOutputs {
  /** [b, sq, h, dv] */
  readonly o: tf.Tensor4D;
  /** [b, h, sq], fp32; -inf for rows with an empty normaliser and rows past a sequence's length. */
  readonly lse: tf.Tensor3D;
}

/**
 * q·kᵀ per head, [b, h, sq, skv]. For GQA the g = h/hg query heads that share a kv head are folded
 * into the row dimension ([b, hg, g*sq, d]), so one batched matMul serves them without repeating k.
 */
function scores(q: tf.Tensor4D, k: tf.Tensor4D): tf.Tensor4D {
  const [b, sq, h, d] = q.shape;
  const [, skv, hg] = k.shape;
  const qh = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [b, hg, (h / hg) * sq, d]);
  const kh = tf.transpose(k, [0, 2, 1, 3]);
  return tf.reshape(tf.matMul(qh, kh, false, true), [b, h, sq, skv]);
}

/** probs [b, h, sq, skv] · v per head, back to [b, sq, h, dv], folding GQA groups as in `scores`. */
function weightedValues(probs: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
  const [b, h, sq, skv] = probs.shape;
  const [, , hg, dv] = v.shape;
  const vh = tf.transpose(v, [0, 2, 1, 3]);
  const o = tf.matMul(tf.reshape(probs, [b, hg, (h / hg) * sq, skv]), vh);
  return tf.transpose(tf.reshape(o, [b, h, sq, dv]), [0, 2, 1, 3]);
}

/**
 * x [..., n, 1] repeated along the last axis to [..., n, width], as an outer product with ones.
 * Row-wise operations then combine equal shapes, which tfjs's cpu backend does in a tight loop
 * (its broadcasting path computes indices per element and is many times slower).
 */
function repeatColumns(x: tf.Tensor, width: number): tf.Tensor {
  return tf.matMul(x, tf.ones([1, width]));
}

/**
 * The scaled, biased, masked logits (masked pairs -inf). The softmax scale is applied to q, which is
 * smaller than the scores (and for pre_scale_bias to the bias too: scale·(q·k + bias)).
 */
function logits(x: GraphOperands, c: AttentionConstants, p: AttentionParams): tf.Tensor4D {
  let s: tf.Tensor = scores(tf.mul(x.q, p.softmaxScale) as tf.Tensor4D, x.k);
  if (p.biasType === "pre_scale_bias" && x.bias) s = tf.add(s, tf.mul(x.bias, p.softmaxScale));
  if (p.biasType === "post_scale_bias" && x.bias) s = tf.add(s, x.bias);
  if (c.scoreBias) s = tf.add(s, c.scoreBias);
  return s as tf.Tensor4D;
}

/**
 * The logit that joins every row's normaliser besides the keys ([1, h, 1, 1]): 0 for off_by_one,
 * the learnt per-head offset for learnable, none for vanilla.
 */
function extraLogit(x: GraphOperands, p: AttentionParams): tf.Tensor | null {
  if (p.softmaxType === "off_by_one") return tf.zeros([1, p.h, 1, 1]);
  if (p.softmaxType === "learnable" && x.softmaxOffset) return tf.reshape(x.softmaxOffset, [1, p.h, 1, 1]);
  return null;
}

interface SoftmaxParts {
  readonly probs: tf.Tensor;
  /** [b, h, sq, 1] */
  readonly lse: tf.Tensor;
  /** exp(extra - lse) [b, h, sq, 1], the extra logit's share of each row. */
  readonly extraProb: tf.Tensor | null;
}

/**
 * Softmax over keys that stays finite when a row has no allowed key: the row's maximum is the shift
 * (0 for an all -inf row), masked entries give exp(-inf) = 0, and an empty normaliser divides by 1
 * instead of 0, so such a row's probabilities are 0 and its lse -inf. Computed once, off the tape.
 */
function softmaxParts(s: tf.Tensor4D, extra: tf.Tensor | null): SoftmaxParts {
  const width = s.shape[3];
  let rowMax = tf.max(s, -1, true);
  if (extra) rowMax = tf.maximum(rowMax, extra);
  const shift = tf.where(tf.isFinite(rowMax), rowMax, tf.zerosLike(rowMax));
  const e = tf.exp(tf.sub(s, repeatColumns(shift, width)));
  const eExtra = extra ? tf.exp(tf.sub(extra, shift)) : null;
  const normaliser = eExtra ? tf.add(tf.sum(e, -1, true), eExtra) : tf.sum(e, -1, true);
  const safe = tf.where(tf.greater(normaliser, 0), normaliser, tf.onesLike(normaliser));
  return {
    probs: tf.mul(e, repeatColumns(tf.reciprocal(safe), width)),
    lse: tf.add(tf.log(normaliser), shift),
    extraProb: eExtra ? tf.div(eExtra, safe) : null,
  };
}

/**
 * The probabilities as one tape node with their gradient written out: dS = P * (dP - rowsum(dP * P));
 * the extra logit gets -p_extra * rowsum(dP * P), summed per head. The comparisons in softmaxParts
 * have no tfjs gradients, and this costs one pass instead of autodiff's several.
 */
function probsOnTape(s: tf.Tensor4D, extra: tf.Tensor | null, parts: SoftmaxParts): tf.Tensor4D {
  const width = s.shape[3];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    save(parts.extraProb ? [parts.probs, parts.extraProb] : [parts.probs]);
    return {
      value: tf.clone(parts.probs),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [probs, extraProb] = saved;
        const rowDot = tf.sum(tf.mul(dy as tf.Tensor, probs), -1, true);
        const ds = tf.mul(probs, tf.sub(dy as tf.Tensor, repeatColumns(rowDot, width)));
        if (!extraProb) return [ds];
        return [ds, tf.sum(tf.neg(tf.mul(extraProb, rowDot)), [0, 2, 3], true)];
      },
    };
  });
  return (extra ? f(s, extra) : f(s)) as tf.Tensor4D;
}

/** Unfused dot-product attention as tfjs ops (TE's UnfusedDotProductAttention), batch-first. */
export function attentionGraph(x: GraphOperands, c: AttentionConstants, p: AttentionParams): GraphOutputs {
  const s = logits(x, c, p);
  const extra = extraLogit(x, p);
  const parts = softmaxParts(stopGradient(s), extra && stopGradient(extra));
  const probs = probsOnTape(s, extra, parts);
  const kept = x.dropoutScale ? (tf.mul(probs, x.dropoutScale) as tf.Tensor4D) : probs;
  let lse = tf.squeeze(parts.lse, [3]) as tf.Tensor3D;
  if (c.rowValid)
    lse = tf.where(c.rowValid, lse, tf.fill(lse.shape, Number.NEGATIVE_INFINITY)) as tf.Tensor3D;
  return { o: weightedValues(kept, x.v), lse };
}
