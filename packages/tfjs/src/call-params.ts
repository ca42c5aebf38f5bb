import {
  ArgumentError,
  type AttentionParams,
  type BiasShape,
  type BiasType,
  isPadding,
  type MaskTensor,
  type MaskType,
  makeParams,
  type QkvFormat,
  type SoftmaxType,
} from "@te/core";
import type * as tf from "@tensorflow/tfjs-core";
import { TFJS_KIND } from "./tensor-bridge.js";

/** What a DotProductAttention is built with (TE's constructor arguments, camelCased). */
export interface DotProductAttentionConfig {
  /** TE's num_attention_heads. */
  readonly numAttentionHeads: number;
  /** TE's kv_channels: the head dim d, or [d, dv] when v's head dim differs. */
  readonly kvChannels: number | readonly [number, number];
  /** TE's num_gqa_groups (kv heads); default numAttentionHeads. */
  readonly numGqaGroups?: number;
  /** TE's attention_dropout; default 0. */
  readonly attentionDropout?: number;
  /** TE's qkv_format; default "sbhd" as in TE. */
  readonly qkvFormat?: QkvFormat;
  /** TE's attn_mask_type; default "causal" as in TE. */
  readonly attnMaskType?: MaskType;
  /** TE's window_size [left, right]; -1 = unbounded; default no window. */
  readonly windowSize?: readonly [number, number];
  /** Alignment of windows and ALiBi for no_mask/padding/arbitrary masks; default true. */
  readonly bottomRightDiagonal?: boolean;
  /** TE's softmax_scale; default 1/sqrt(d). */
  readonly softmaxScale?: number;
  /** TE's softmax_type; default "vanilla". */
  readonly softmaxType?: SoftmaxType;
}

/** Per-call arguments (TE's forward keyword arguments, camelCased). */
export interface DotProductAttentionCall {
  /** For attnMaskType "arbitrary": [b|1, h|1, sq, skv], 1 = masked out. */
  readonly attentionMask?: MaskTensor;
  readonly attnMaskType?: MaskType;
  readonly windowSize?: readonly [number, number];
  readonly coreAttentionBiasType?: BiasType;
  /** pre/post_scale_bias: [b|1, h|1, sq, skv]. */
  readonly coreAttentionBias?: tf.Tensor;
  /** Whether the bias takes a gradient (default true when a bias is given). */
  readonly biasRequiresGrad?: boolean;
  /** Custom ALiBi slopes, [h] or [b*h]. */
  readonly alibiSlopes?: Float32Array | Float64Array;
  readonly cuSeqlensQ?: Int32Array;
  readonly cuSeqlensKv?: Int32Array;
  readonly cuSeqlensQPadded?: Int32Array;
  readonly cuSeqlensKvPadded?: Int32Array;
  readonly maxSeqlenQ?: number;
  readonly maxSeqlenKv?: number;
  /** Whether gradients will be taken (default true); false lets inference-only backends run. */
  readonly isTraining?: boolean;
}

const positiveInt = (x: unknown): x is number => Number.isInteger(x) && (x as number) > 0;

function lengthsMax(cu: Int32Array | undefined): number | undefined {
  if (!cu) return undefined;
  let m = 0;
  for (let i = 0; i + 1 < cu.length; i++) m = Math.max(m, cu[i + 1] - cu[i]);
  return m;
}

function biasShapeOf(bias: tf.Tensor, b: number, h: number, sq: number, skv: number): BiasShape {
  const [bb, bh, bq, bk] = bias.shape;
  const ok = bias.rank === 4 && (bb === 1 || bb === b) && (bh === 1 || bh === h) && bq === sq && bk === skv;
  if (!ok) throw new ArgumentError("coreAttentionBias", `shape [1|${b}, 1|${h}, ${sq}, ${skv}]`, bias.shape);
  return `${bb === 1 ? "1" : "b"}${bh === 1 ? "1" : "h"}ss` as BiasShape;
}

/**
 * The AttentionParams of a call on tf.Tensors: shapes read from q, k, v in the configured format,
 * the configuration and the call's arguments. Checks what tfjs shapes can tell; the backends'
 * rules judge the rest.
 */
export function callParams(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  config: DotProductAttentionConfig,
  call: DotProductAttentionCall,
): AttentionParams {
  const format = config.qkvFormat ?? "sbhd";
  const rank = format === "thd" ? 3 : 4;
  for (const [name, t] of [
    ["q", q],
    ["k", k],
    ["v", v],
  ] as const) {
    if (t.rank !== rank)
      throw new ArgumentError(name, `a rank-${rank} tensor for qkv_format ${format}`, t.shape);
    if (t.dtype !== "float32") throw new ArgumentError(`${name}.dtype`, "float32", t.dtype);
  }
  const h = config.numAttentionHeads;
  const hg = config.numGqaGroups ?? h;
  const [d, dv] =
    typeof config.kvChannels === "number" ? [config.kvChannels, config.kvChannels] : config.kvChannels;
  if (!positiveInt(h)) throw new ArgumentError("numAttentionHeads", "a positive integer", h);
  if (!positiveInt(hg) || h % hg !== 0)
    throw new ArgumentError("numGqaGroups", `a divisor of numAttentionHeads (${h})`, hg);
  const headsAxis = rank - 2;
  const expect = (name: string, t: tf.Tensor, heads: number, dim: number) => {
    if (t.shape[headsAxis] !== heads || t.shape[headsAxis + 1] !== dim) {
      throw new ArgumentError(name, `${heads} heads of dim ${dim} in its last two axes`, t.shape);
    }
  };
  expect("q", q, h, d);
  expect("k", k, hg, d);
  expect("v", v, hg, dv);

  let b: number;
  let sq: number;
  let skv: number;
  if (format === "thd") {
    if (!call.cuSeqlensQ || !call.cuSeqlensKv) {
      throw new ArgumentError("cuSeqlensQ/cuSeqlensKv", "cumulative sequence lengths for qkv_format thd");
    }
    b = call.cuSeqlensQ.length - 1;
    sq = call.maxSeqlenQ ?? lengthsMax(call.cuSeqlensQ) ?? 0;
    skv = call.maxSeqlenKv ?? lengthsMax(call.cuSeqlensKv) ?? 0;
  } else {
    const [batchAxis, seqAxis] = format === "bshd" ? [0, 1] : [1, 0];
    b = q.shape[batchAxis];
    sq = q.shape[seqAxis];
    skv = k.shape[seqAxis];
    if (k.shape[batchAxis] !== b || v.shape[batchAxis] !== b || v.shape[seqAxis] !== skv) {
      throw new ArgumentError("k/v", `batch ${b} and one sequence length for k and v`, [k.shape, v.shape]);
    }
  }
  for (const [name, cu] of [
    ["cuSeqlensQ", call.cuSeqlensQ],
    ["cuSeqlensKv", call.cuSeqlensKv],
  ] as const) {
    if (cu && cu.length !== b + 1)
      throw new ArgumentError(name, `an Int32Array of length b + 1 = ${b + 1}`, cu);
  }

  const maskType = call.attnMaskType ?? config.attnMaskType ?? "causal";
  if (isPadding(maskType) && format !== "thd" && (!call.cuSeqlensQ || !call.cuSeqlensKv)) {
    throw new ArgumentError("cuSeqlensQ/cuSeqlensKv", `the sequence lengths of the ${maskType} mask`);
  }
  if (maskType === "arbitrary" && !call.attentionMask) {
    throw new ArgumentError("attentionMask", 'a mask for attnMaskType "arbitrary"');
  }
  const biasType = call.coreAttentionBiasType ?? (call.coreAttentionBias ? "post_scale_bias" : "no_bias");
  const scaledBias = biasType === "pre_scale_bias" || biasType === "post_scale_bias";
  if (scaledBias && !call.coreAttentionBias)
    throw new ArgumentError("coreAttentionBias", `a tensor for ${biasType}`);
  const slopes = call.alibiSlopes;
  if (slopes && slopes.length !== h && slopes.length !== b * h) {
    throw new ArgumentError("alibiSlopes", `${h} or ${b * h} slopes`, slopes);
  }
  const window = call.windowSize ?? config.windowSize ?? [-1, -1];
  const dropout = config.attentionDropout ?? 0;
  if (!(dropout >= 0 && dropout < 1))
    throw new ArgumentError("attentionDropout", "a probability in [0, 1)", dropout);

  return makeParams({
    qkvFormat: format,
    device: TFJS_KIND,
    b,
    h,
    hg,
    d,
    dv,
    sq,
    skv,
    tq: format === "thd" ? q.shape[0] : b * sq,
    tkv: format === "thd" ? k.shape[0] : b * skv,
    maskType,
    window: [window[0], window[1]],
    bottomRightDiagonal: config.bottomRightDiagonal ?? true,
    biasType,
    biasShape:
      scaledBias && call.coreAttentionBias ? biasShapeOf(call.coreAttentionBias, b, h, sq, skv) : null,
    biasRequiresGrad: scaledBias && (call.biasRequiresGrad ?? true),
    alibiSlopes: biasType !== "alibi" ? null : !slopes ? "default" : slopes.length === h ? "h" : "bh",
    softmaxType: config.softmaxType ?? "vanilla",
    softmaxScale: config.softmaxScale ?? 1 / Math.sqrt(d),
    dropout,
    isTraining: call.isTraining ?? true,
    paddedThd:
      format === "thd" && (call.cuSeqlensQPadded !== undefined || call.cuSeqlensKvPadded !== undefined),
  });
}
