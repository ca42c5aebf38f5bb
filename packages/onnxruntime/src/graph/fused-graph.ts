import type { GraphBuilder } from "../onnx/graph-builder.js";
import { type AttentionGraphConfig, GRAPH_NAMES as N } from "./attention-config.js";
import { additiveTerms, applyMask, attentionOperands, termsVaryByHead } from "./attention-operands.js";
import { outputInFormat } from "./forward-graph.js";
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
 * ONNX Attention (opset 23): ORT's fused kernel computes O; the mask and every additive score term
 * (bias, ALiBi) go in as its attn_mask (boolean when there are no terms, else additive with -inf
 * where masked). The op has no log-sum-exp output, so lse is taken from its scaled QK output
 * (qk_matmul_output_mode 0) with the same terms and mask.
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

  const inputs = mask === undefined ? [q4, k4, v4] : [q4, k4, v4, mask];
  const [y, , , qk] = g.opN("Attention", inputs, 4, { scale: { float: c.scale }, qk_matmul_output_mode: 0 });
  const scores = headsSplit(g, c, qk, c.skv);
  const lse = rowLogSumExp(g, applyMask(g, x, terms === undefined ? scores : g.add(scores, terms)));
  // A row with no allowed key must give 0 (ORT's kernels differ on what they give there).
  const o5 = g.where(g.op("IsInf", [lse]), g.float(0), headsSplit(g, c, y, c.dv));
  outputInFormat(g, c, N.o, o5, "q", c.h, c.dv, x.seqQ);
  g.output(N.lse, g.reshape(lse, [c.b, c.h, c.sq]), "float", [c.b, c.h, c.sq]);
}

/**
 * com.microsoft GroupQueryAttention: causal self-attention with GQA, sliding windows
 * (local_window_size = left + 1 keys) and the softmax variants TE calls off_by_one (smooth_softmax)
 * and learnable (head_sink). It takes [b, s, heads·d] inputs; lse comes from its scaled QK output.
 */
export function buildGroupQueryAttentionGraph(g: GraphBuilder, c: AttentionGraphConfig): void {
  const x = attentionOperands(g, c);
  const flat = (t5: string, heads: number, s: number, dim: number): string =>
    g.reshape(g.transpose(g.reshape(t5, [c.b, heads, s, dim]), [0, 2, 1, 3]), [c.b, s, heads * dim]);
  const q3 = flat(x.q5, c.h, c.sq, c.d);
  const k3 = flat(x.k5, c.hg, c.skv, c.d);
  const v3 = flat(x.v5, c.hg, c.skv, c.dv);
  const seqlensK = g.constant("int32", [c.b], new Uint8Array(Int32Array.from({ length: c.b }, () => c.skv - 1).buffer));
  const totalLength = g.constant("int32", [1], new Uint8Array(Int32Array.of(c.skv).buffer));
  const inputs = [q3, k3, v3, "", "", seqlensK, totalLength];
  if (c.softmaxType === "learnable") inputs.push("", "", "", "", x.softmaxOffset as string);
  const [y, , , qk] = g.opN(
    "GroupQueryAttention",
    inputs,
    4,
    {
      num_heads: c.h,
      kv_num_heads: c.hg,
      scale: { float: c.scale },
      local_window_size: c.window[0] === -1 ? -1 : c.window[0] + 1,
      smooth_softmax: c.softmaxType === "off_by_one" ? 1 : 0,
      qk_output: 1,
    },
    MICROSOFT_DOMAIN,
  );
  const lse = rowLogSumExp(g, applyMask(g, x, headsSplit(g, c, qk, c.skv)), x.extraLogit);
  const y5 = g.transpose(g.reshape(y, [c.b, c.sq, c.hg, c.h / c.hg, c.dv]), [0, 2, 3, 1, 4]);
  outputInFormat(g, c, N.o, y5, "q", c.h, c.dv, x.seqQ);
  g.output(N.lse, g.reshape(lse, [c.b, c.h, c.sq]), "float", [c.b, c.h, c.sq]);
}

export const FUSED_GRAPHS: Record<FusedOp, { build: (g: GraphBuilder, c: AttentionGraphConfig) => void; opsets: Record<string, number> }> = {
  Attention: { build: buildOnnxAttentionGraph, opsets: { "": ATTENTION_OPSET } },
  GroupQueryAttention: { build: buildGroupQueryAttentionGraph, opsets: { "": 21, [MICROSOFT_DOMAIN]: 1 } },
};
