import { biasDims } from "@te/core";
import type { GraphBuilder } from "../onnx/graph-builder.js";
import { type AttentionGraphConfig, GRAPH_NAMES as N } from "./attention-config.js";
import { attentionOperands, maskedScores, onnxDTypeOf, queryInput, SWAP_LAST } from "./attention-operands.js";
import { outputInFormat, toStorage } from "./forward-graph.js";

/**
 * The attention backward graph, for the loss L with dL/dO = dO. It recomputes P from the saved lse
 * (P = exp(S - lse)) instead of storing it, then:
 *   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP - rowsum(dO ∘ O)),
 *   dQ = scale·dS K,  dK = scale·dSᵀ Q  (pre_scale_bias: the same; dbias = scale·dS),
 *   post_scale_bias: dbias = dS,  learnable softmax: d offset[h] = -Σ exp(offset - lse) rowsum(dO ∘ O).
 * Gradients of k/v heads shared by a GQA group are summed over the group axis.
 */
export function buildBackwardGraph(g: GraphBuilder, c: AttentionGraphConfig): void {
  const x = attentionOperands(g, c);
  const o5 = queryInput(g, c, N.o, c.dv, x.seqQ);
  const dO5 = queryInput(g, c, N.dO, c.dv, x.seqQ);
  const lseIn = g.input(N.lse, "float", [c.b, c.h, c.sq]);
  const lse5 = g.reshape(lseIn, [c.b, c.hg, c.h / c.hg, c.sq, 1]);
  // Rows with no allowed key have lse -inf; their scores are all -inf, so any finite shift gives P = 0.
  const lseFinite = g.where(g.op("IsInf", [lse5]), g.float(0), lse5);
  const p = g.op("Exp", [g.sub(maskedScores(g, c, x), lseFinite)]);

  const rowDot = g.reduceSum(g.mul(dO5, o5), [-1]);
  // Pᵀ·dO as (dOᵀ·P)ᵀ: transposing the small [.., s, dv] operand and result instead of the
  // [.., sq, skv] probabilities (ORT's Transpose of the big matrix costs more than the MatMul).
  const transposedProduct = (small: string, big: string): string =>
    g.transpose(g.matmul(g.transpose(small, SWAP_LAST), big), SWAP_LAST);
  const dv5 = g.reduceSum(transposedProduct(dO5, p), [2]);
  const dP = g.matmul(dO5, g.transpose(x.v5, SWAP_LAST));
  const dS = g.mul(p, g.sub(dP, rowDot));
  const scale = g.float(c.scale);
  const dScaled = g.mul(dS, scale);
  const dq5 = g.matmul(dScaled, x.k5);
  const dk5 = g.reduceSum(transposedProduct(x.q5, dScaled), [2]);

  outputInFormat(g, c, N.dq, dq5, "q", c.h, c.d, x.seqQ);
  outputInFormat(g, c, N.dk, dk5, "kv", c.hg, c.d, x.seqKv);
  outputInFormat(g, c, N.dv, dv5, "kv", c.hg, c.dv, x.seqKv);

  if (c.biasGrad && c.biasShape && x.bias5) {
    const shape = biasDims(c.biasShape, c.b, c.h, c.sq, c.skv);
    const dBiasFull = g.reshape(c.biasType === "pre_scale_bias" ? dScaled : dS, [c.b, c.h, c.sq, c.skv]);
    const broadcastAxes = [0, 1].filter((axis) => shape[axis] === 1);
    const dbias = broadcastAxes.length > 0 ? g.reduceSum(dBiasFull, broadcastAxes) : dBiasFull;
    g.output(N.dbias, toStorage(g, c, dbias), onnxDTypeOf(c), shape);
  }
  if (c.softmaxType === "learnable" && x.extraLogit) {
    // Rows past their sequence's length (lse -inf) do not exist: no share for the extra logit. (Their
    // unpacked thd o and dO repeat other rows, so their rowDot is not 0.)
    const pExtra = g.where(g.op("IsInf", [lse5]), g.float(0), g.op("Exp", [g.sub(x.extraLogit, lse5)]));
    const perHead = g.reduceSum(g.mul(pExtra, rowDot), [0, 3, 4]);
    g.output(N.dSoftmaxOffset, g.op("Neg", [g.reshape(perHead, [c.h])]), "float", [c.h]);
  }
}
