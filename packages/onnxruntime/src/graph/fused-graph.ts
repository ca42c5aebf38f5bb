import type { GraphBuilder } from "../onnx/graph-builder.js";
import { ONNX_DTYPE } from "../onnx/onnx-proto.js";
import { type AttentionGraphConfig, GRAPH_NAMES as N } from "./attention-config.js";
import {
  type AttentionOperands,
  additiveTerms,
  applyMask,
  attentionOperands,
  maskedScores,
  termsVaryByHead,
} from "./attention-operands.js";
import { outputInFormat, rowsPastLengthAtMinusInf } from "./forward-graph.js";
import { rowLogSumExp } from "./softmax-ops.js";

/** The ORT op a fused graph is built around. */
export type FusedOp = "Attention" | "GroupQueryAttention";

/** Opset of the ONNX Attention op (ai.onnx, since 23). */
export const ATTENTION_OPSET = 23;
export const MICROSOFT_DOMAIN = "com.microsoft";

/** [b, h, sq, x] → [b, hg, g, sq, x], the working shape the shared output code takes. */
const headsSplit = (g: GraphBuilder, c: AttentionGraphConfig, x: string, last: number): string =>
  g.reshape(x, [c.b, c.hg, c.h / c.hg, c.sq, last]);

/**
 * Outputs o and lse of a fused graph. The fused ops have no log-sum-exp output, so lse is computed
 * beside them from q and k with the same terms and mask (asking the ops for their QK output instead
 * takes a much slower path in ORT's CPU kernels). A row with no allowed key must give o = 0, which
 * ORT's kernels do not all promise.
 */
function fusedOutputs(g: GraphBuilder, c: AttentionGraphConfig, x: AttentionOperands, o5: string): void {
  let o = o5;
  if (x.allowed !== undefined) {
    const rowHasKey = g.cast(g.reduceMax(g.cast(x.allowed, ONNX_DTYPE.float), [-1]), ONNX_DTYPE.bool);
    o = g.where(rowHasKey, o5, g.float(0));
  }
  outputInFormat(g, c, N.o, o, "q", c.h, c.dv, x.seqQ);
  if (c.withLse === false) return;
  const lse = rowsPastLengthAtMinusInf(g, x, rowLogSumExp(g, maskedScores(g, c, x), x.extraLogit));
  g.output(N.lse, g.reshape(lse, [c.b, c.h, c.sq]), "float", [c.b, c.h, c.sq]);
}

/**
 * ONNX Attention (opset 23): ORT's fused kernel computes O; the mask and every additive score term
 * (bias, ALiBi) go in as its attn_mask (boolean when there are no terms, else additive with -inf
 * where masked).
 */
export function buildOnnxAttentionGraph(g: GraphBuilder, c: AttentionGraphConfig): void {
  const x = attentionOperands(g, c);
  const q4 = g.reshape(x.q5, [c.b, c.h, c.sq, c.d]);
  const k4 = g.reshape(x.k5, [c.b, c.hg, c.skv, c.d]);
  const v4 = g.reshape(x.v5, [c.b, c.hg, c.skv, c.dv]);
  const terms = additiveTerms(g, c, x);
  const perHead = termsVaryByHead(c) ? c.h : 1;
  // [B|1, hg|1, g|1, sq, skv] → [B|1, h|1, sq, skv], the shapes attn_mask broadcasts from.
  const to4d = (t: string): string => g.reshape(t, [-1, perHead, c.sq, c.skv]);
  let mask: string | undefined;
  if (terms !== undefined) mask = to4d(applyMask(g, x, terms));
  else if (x.allowed !== undefined) mask = to4d(x.allowed);

  const y = g.op("Attention", mask === undefined ? [q4, k4, v4] : [q4, k4, v4, mask], {
    scale: { float: c.scale },
  });
  fusedOutputs(g, c, x, headsSplit(g, c, y, c.dv));
}

/**
 * com.microsoft GroupQueryAttention: causal self-attention with GQA, sliding windows
 * (local_window_size = left + 1 keys) and the softmax variants TE calls off_by_one (smooth_softmax)
 * and learnable (head_sink). It takes [b, s, heads·d] inputs.
 */
export function buildGroupQueryAttentionGraph(g: GraphBuilder, c: AttentionGraphConfig): void {
  const x = attentionOperands(g, c);
  const flat = (t5: string, heads: number, s: number, dim: number): string =>
    g.reshape(g.transpose(g.reshape(t5, [c.b, heads, s, dim]), [0, 2, 1, 3]), [c.b, s, heads * dim]);
  const q3 = flat(x.q5, c.h, c.sq, c.d);
  const k3 = flat(x.k5, c.hg, c.skv, c.d);
  const v3 = flat(x.v5, c.hg, c.skv, c.dv);
  const seqlensK = g.constant(
    "int32",
    [c.b],
    new Uint8Array(Int32Array.from({ length: c.b }, () => c.skv - 1).buffer),
  );
  const totalLength = g.constant("int32", [1], new Uint8Array(Int32Array.of(c.skv).buffer));
  const inputs = [q3, k3, v3, "", "", seqlensK, totalLength];
  if (c.softmaxType === "learnable") inputs.push("", "", "", "", x.softmaxOffset as string);
  const [y] = g.opN(
    "GroupQueryAttention",
    inputs,
    3,
    {
      num_heads: c.h,
      kv_num_heads: c.hg,
      scale: { float: c.scale },
      local_window_size: c.window[0] === -1 ? -1 : c.window[0] + 1,
      smooth_softmax: c.softmaxType === "off_by_one" ? 1 : 0,
    },
    MICROSOFT_DOMAIN,
  );
  fusedOutputs(g, c, x, g.transpose(g.reshape(y, [c.b, c.sq, c.hg, c.h / c.hg, c.dv]), [0, 2, 3, 1, 4]));
}

export const FUSED_GRAPHS: Record<
  FusedOp,
  { build: (g: GraphBuilder, c: AttentionGraphConfig) => void; opsets: Record<string, number> }
> = {
  Attention: { build: buildOnnxAttentionGraph, opsets: { "": ATTENTION_OPSET } },
  GroupQueryAttention: { build: buildGroupQueryAttentionGraph, opsets: { "": 21, [MICROSOFT_DOMAIN]: 1 } },
};
