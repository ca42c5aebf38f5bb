import type { AttentionParams, Rule } from "@te/core";
import type { FusedOp } from "../graph/fused-graph.js";
import { ortRuntimeVersion, versionAtLeast } from "../runtime/ort-runtime.js";
import { MAX_SCORE_ELEMENTS, ORT_GRAPH_RULES, scoreElements } from "./ort-native-rules.js";

/**
 * Which of ORT's fused ops runs a call: ONNX Attention for TE's vanilla softmax (it takes any mask
 * and additive bias), com.microsoft GroupQueryAttention for off_by_one (its smooth_softmax) and
 * learnable (its head_sink), which ONNX Attention does not have.
 */
export const fusedOpOf = (p: AttentionParams): FusedOp =>
  p.softmaxType === "vanilla" ? "Attention" : "GroupQueryAttention";

const usesGqaOp = (p: AttentionParams): boolean => fusedOpOf(p) === "GroupQueryAttention";
const GQA_OP = "com.microsoft GroupQueryAttention (the ORT op with off_by_one/learnable softmax)";

/** ONNX Attention (opset 23) and GroupQueryAttention's head_sink arrived in ONNX Runtime 1.23. */
const FUSED_OPS_SINCE = [1, 23] as const;

export const ORT_FUSED_RULES: readonly Rule[] = [
  ...ORT_GRAPH_RULES,
  {
    id: "ort.fused.runtime_version",
    rejects: () => {
      const version = ortRuntimeVersion();
      return version !== undefined && !versionAtLeast(version, ...FUSED_OPS_SINCE);
    },
    message: () =>
      `needs ONNX Runtime ${FUSED_OPS_SINCE.join(".")} or later for its fused attention ops (this is ${ortRuntimeVersion()})`,
  },
  {
    id: "ort.fused.training",
    rejects: (p) => p.isTraining,
    message: "does not support training: ORT's fused attention ops have no backward (ort.native has one)",
  },
  {
    id: "ort.fused.score_size",
    rejects: (p) => scoreElements(p) > MAX_SCORE_ELEMENTS,
    message: (p) =>
      `would materialise a ${p.b}x${p.h}x${p.sq}x${p.skv} QK output for the log-sum-exp (limit ${MAX_SCORE_ELEMENTS} elements)`,
  },
  {
    id: "ort.fused.gqa_op.mask",
    rejects: (p) => usesGqaOp(p) && p.maskType !== "causal" && p.maskType !== "causal_bottom_right",
    message: (p) =>
      `does not support softmax_type=${p.softmaxType} with mask ${p.maskType}: ${GQA_OP} is causal only`,
  },
  {
    id: "ort.fused.gqa_op.cross_attention",
    rejects: (p) => usesGqaOp(p) && p.sq !== p.skv,
    message: (p) =>
      `does not support softmax_type=${p.softmaxType} with sq != skv (${p.sq} vs ${p.skv}): ${GQA_OP} is self-attention only`,
  },
  {
    id: "ort.fused.gqa_op.bias",
    rejects: (p) => usesGqaOp(p) && p.biasType !== "no_bias",
    message: (p) =>
      `does not support softmax_type=${p.softmaxType} with ${p.biasType}: ${GQA_OP} takes no bias here`,
  },
  {
    id: "ort.fused.gqa_op.head_dim",
    rejects: (p) => usesGqaOp(p) && (p.d % 8 !== 0 || p.dv !== p.d),
    message: (p) =>
      `does not support softmax_type=${p.softmaxType} with head dims d=${p.d}, dv=${p.dv}: ${GQA_OP} needs d = dv, a multiple of 8`,
  },
  {
    id: "ort.fused.gqa_op.thd",
    rejects: (p) => usesGqaOp(p) && p.qkvFormat === "thd",
    message: (p) => `does not support softmax_type=${p.softmaxType} with the thd format`,
  },
];
