import type { GraphBuilder } from "../onnx/graph-builder.js";
import { ONNX_DTYPE } from "../onnx/onnx-proto.js";
import { type AttentionGraphConfig, GRAPH_NAMES as N } from "./attention-config.js";
import {
  type AttentionOperands,
  attentionOperands,
  formatShape,
  maskedScores,
  onnxDTypeOf,
} from "./attention-operands.js";
import { from5d, type PackedSequences, packThd } from "./layout-ops.js";
import { softmaxWithLse } from "./softmax-ops.js";

/** Casts an fp32 result to the storage dtype. */
export const toStorage = (g: GraphBuilder, c: AttentionGraphConfig, x: string): string =>
  c.dtype === "fp16" ? g.cast(x, ONNX_DTYPE.float16) : x;

/** [b, hg, g|1, s, dim] working tensor → the caller's format (thd packed), as a graph output. */
export function outputInFormat(
  g: GraphBuilder,
  c: AttentionGraphConfig,
  name: string,
  x5: string,
  which: "q" | "kv",
  heads: number,
  dim: number,
  seq: PackedSequences | undefined,
): void {
  const s = which === "q" ? c.sq : c.skv;
  let y = from5d(g, c, x5, s, heads, dim);
  if (c.format === "thd") y = packThd(g, y, seq as PackedSequences, c.b, heads, dim);
  g.output(name, toStorage(g, c, y), onnxDTypeOf(c), formatShape(c, which, heads, dim));
}

/**
 * lse of rows past their sequence's length is -inf by contract. Rows without an allowed key get
 * -inf from the softmax already, except with an extra logit (off_by_one, learnable), which gives
 * every row a normaliser.
 */
export function rowsPastLengthAtMinusInf(g: GraphBuilder, x: AttentionOperands, lse: string): string {
  if (!x.extraLogit || !x.queryRowValid) return lse;
  return g.where(x.queryRowValid, lse, g.float(Number.NEGATIVE_INFINITY));
}

/**
 * The framework-native attention forward graph: O = softmax(mask(scale·QKᵀ + bias)) V with
 * MatMul, Where, Exp, ReduceSum, and the log-sum-exp of each row. Outputs o (format of q, head
 * dim dv) and lse fp32 [b, h, sq].
 */
export function buildForwardGraph(g: GraphBuilder, c: AttentionGraphConfig): void {
  const x = attentionOperands(g, c);
  const { p, lse } = softmaxWithLse(g, maskedScores(g, c, x), x.extraLogit);
  outputInFormat(g, c, N.o, g.matmul(p, x.v5), "q", c.h, c.dv, x.seqQ);
  if (c.withLse === false) return;
  g.output(N.lse, g.reshape(rowsPastLengthAtMinusInf(g, x, lse), [c.b, c.h, c.sq]), "float", [
    c.b,
    c.h,
    c.sq,
  ]);
}
