import {
  type AttentionParams,
  type BiasShape,
  type BiasType,
  isBottomRightAligned,
  isPadding,
  type MaskType,
  type QkvFormat,
  type SoftmaxType,
} from "@te/core";

/**
 * Everything that shapes an attention ONNX graph: the params that change the graph plus the facts
 * only the call's tensors tell (the arbitrary mask's broadcast shape). Two calls with equal configs
 * share one InferenceSession.
 */
export interface AttentionGraphConfig {
  readonly format: QkvFormat;
  /** Storage dtype of q, k, v, o (math is fp32 inside the graph). */
  readonly dtype: "fp32" | "fp16";
  readonly b: number;
  readonly h: number;
  readonly hg: number;
  readonly d: number;
  readonly dv: number;
  readonly sq: number;
  readonly skv: number;
  readonly tq: number;
  readonly tkv: number;
  readonly maskType: MaskType;
  readonly window: readonly [number, number];
  /** Whether windows, causal masks and ALiBi align queries to the bottom-right of the score matrix. */
  readonly bottomRight: boolean;
  readonly biasType: BiasType;
  readonly biasShape: BiasShape | null;
  readonly biasGrad: boolean;
  readonly alibiSlopes: AttentionParams["alibiSlopes"];
  /** Custom slopes ([h] or [b, h] flattened) built into the graph as a constant instead of an input (exported models). */
  readonly alibiSlopeValues?: readonly number[];
  readonly softmaxType: SoftmaxType;
  readonly scale: number;
  /** false: o only, no lse output (exported inference models); default true. */
  readonly withLse?: boolean;
  /** [b|1, h|1] of the arbitrary mask; null without one. */
  readonly maskBroadcast: readonly [number, number] | null;
}

/** The graph's input and output names: feeds and results are keyed by them. */
export const GRAPH_NAMES = {
  q: "q",
  k: "k",
  v: "v",
  bias: "bias",
  cuSeqlensQ: "cu_seqlens_q",
  cuSeqlensKv: "cu_seqlens_kv",
  alibiSlopes: "alibi_slopes",
  attnMask: "attn_mask",
  softmaxOffset: "softmax_offset",
  o: "o",
  lse: "lse",
  dO: "d_o",
  dq: "dq",
  dk: "dk",
  dv: "dv",
  dbias: "dbias",
  dSoftmaxOffset: "d_softmax_offset",
} as const;

/** Whether the graph needs the per-sequence lengths (cu_seqlens inputs). */
export const usesSeqlens = (c: Pick<AttentionGraphConfig, "format" | "maskType">): boolean =>
  c.format === "thd" || isPadding(c.maskType);

export function graphConfigOf(p: AttentionParams, maskShape?: readonly number[]): AttentionGraphConfig {
  return {
    format: p.qkvFormat,
    dtype: p.dtype === "fp16" ? "fp16" : "fp32",
    b: p.b,
    h: p.h,
    hg: p.hg,
    d: p.d,
    dv: p.dv,
    sq: p.sq,
    skv: p.skv,
    tq: p.tq,
    tkv: p.tkv,
    maskType: p.maskType,
    window: p.window,
    bottomRight: isBottomRightAligned(p.maskType, p.bottomRightDiagonal),
    biasType: p.biasType,
    biasShape: p.biasShape,
    biasGrad: p.biasRequiresGrad,
    alibiSlopes: p.biasType === "alibi" ? (p.alibiSlopes ?? "default") : null,
    softmaxType: p.softmaxType,
    scale: p.softmaxScale,
    maskBroadcast:
      p.maskType !== "arbitrary"
        ? null
        : maskShape
          ? [maskShape[0] === 1 ? 1 : p.b, maskShape[1] === 1 ? 1 : p.h]
          : [p.b, 1],
  };
}

export const configKey = (c: AttentionGraphConfig): string => JSON.stringify(c, Object.keys(c).sort());
