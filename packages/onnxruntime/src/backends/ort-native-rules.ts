import type { AttentionParams, Rule } from "@te/core";

/** The largest score matrix (b·h·sq·skv fp32 elements) a framework-native graph materialises. */
export const MAX_SCORE_ELEMENTS = 2 ** 29;

/** Limits every attention graph of this package shares (native and fused). */
export const ORT_GRAPH_RULES: readonly Rule[] = [
  {
    id: "ort.fp8",
    rejects: (p) => p.fp8 !== null || p.dtype === "fp8e4m3" || p.dtype === "fp8e5m2",
    message: "does not support FP8 attention (ONNX Runtime's JS tensors have no FP8 type)",
  },
  {
    id: "ort.dropout",
    rejects: (p) => p.dropout > 0,
    message: (p) =>
      `does not support dropout (p=${p.dropout}): ONNX Dropout's RNG is not TE's counter-based RNG`,
  },
  {
    id: "ort.padded_thd",
    rejects: (p) => p.paddedThd,
    message:
      "does not support thd with padding between sequences (cu_seqlens_q_padded / cu_seqlens_kv_padded)",
  },
  {
    id: "ort.context_parallel",
    rejects: (p) => p.cpSize > 1,
    message:
      "does not run context parallelism itself (split the call with @te/core's context-parallel helpers)",
  },
];

export const scoreElements = (p: AttentionParams): number => p.b * p.h * p.sq * p.skv;

export const ORT_NATIVE_RULES: readonly Rule[] = [
  ...ORT_GRAPH_RULES,
  {
    id: "ort.native.score_size",
    rejects: (p) => scoreElements(p) > MAX_SCORE_ELEMENTS,
    message: (p) =>
      `would materialise a ${p.b}x${p.h}x${p.sq}x${p.skv} score matrix (${scoreElements(p)} elements, limit ${MAX_SCORE_ELEMENTS})`,
  },
];
