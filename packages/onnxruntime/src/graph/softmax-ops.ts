import type { GraphBuilder } from "../onnx/graph-builder.js";

/**
 * Softmax over the last axis of masked scores (-inf = not allowed), with an optional extra logit
 * in each row's normaliser (off_by_one, learnable). Written out (max, exp, sum) rather than with
 * ONNX Softmax because attention also needs the log-sum-exp, and because a row with no allowed key
 * must give probabilities 0 and lse -inf instead of NaN.
 */
export function softmaxWithLse(g: GraphBuilder, scores: string, extraLogit?: string): { p: string; lse: string } {
  let max = g.reduceMax(scores, [-1]);
  if (extraLogit) max = g.op("Max", [max, extraLogit]);
  // A row with every key masked has max -inf; shifting by 0 instead keeps exp(-inf) = 0, not NaN.
  const shift = g.where(g.op("IsInf", [max]), g.float(0), max);
  const e = g.op("Exp", [g.sub(scores, shift)]);
  let z = g.reduceSum(e, [-1]);
  if (extraLogit) z = g.add(z, g.op("Exp", [g.sub(extraLogit, shift)]));
  // z is 0 only in such rows, where e is 0 too: any positive divisor gives p = 0.
  const p = g.div(e, g.op("Max", [z, g.float(1e-30)]));
  const lse = g.add(shift, g.op("Log", [z]));
  return { p, lse };
}
