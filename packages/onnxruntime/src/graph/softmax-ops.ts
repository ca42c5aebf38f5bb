import type { GraphBuilder } from "../onnx/graph-builder.js";

/**
 * Row statistics of masked scores (-inf = not allowed) over the last axis, with an optional extra
 * logit in each row's normaliser (off_by_one, learnable): the shift (row max, 0 for a row with
 * every key masked so that exp(-inf - shift) stays 0 instead of NaN), exp(scores - shift) and its sum.
 */
function rowExp(g: GraphBuilder, scores: string, extraLogit?: string) {
  let max = g.reduceMax(scores, [-1]);
  if (extraLogit) max = g.op("Max", [max, extraLogit]);
  const shift = g.where(g.op("IsInf", [max]), g.float(0), max);
  const e = g.op("Exp", [g.sub(scores, shift)]);
  let z = g.reduceSum(e, [-1]);
  if (extraLogit) z = g.add(z, g.op("Exp", [g.sub(extraLogit, shift)]));
  return { shift, e, z };
}

/** log Σ exp over the last axis (+ the extra logit); -inf for a row with no allowed key. */
export function rowLogSumExp(g: GraphBuilder, scores: string, extraLogit?: string): string {
  const { shift, z } = rowExp(g, scores, extraLogit);
  return g.add(shift, g.op("Log", [z]));
}

/**
 * Softmax probabilities and log-sum-exp. Written out (max, exp, sum) rather than with ONNX Softmax
 * because attention also needs the log-sum-exp, and because a row with no allowed key must give
 * probabilities 0 and lse -inf instead of NaN.
 */
export function softmaxWithLse(
  g: GraphBuilder,
  scores: string,
  extraLogit?: string,
): { p: string; lse: string } {
  const { shift, e, z } = rowExp(g, scores, extraLogit);
  // z is 0 only in rows with every key masked, where e is 0 too: any positive divisor gives p = 0.
  const p = g.div(e, g.op("Max", [z, g.float(1e-30)]));
  return { p, lse: g.add(shift, g.op("Log", [z])) };
}
