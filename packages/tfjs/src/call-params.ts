import {
  type AttentionParams,
  type BiasType,
  type Env,
  type MaskType,
  type PaddingMaskArgument,
  type QkvFormat,
  type SoftmaxType,
  type ValidatedCall,
  validateAttentionCall,
} from "@te/core";
import type * as tf from "@tensorflow/tfjs-core";
import { TFJS_KIND, tfjsTensors } from "./tensor-bridge.js";

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
  /**
   * 1 = masked out. Padding masks: [b, 1, 1, s] for q and kv, or a pair [q mask, kv mask] (they
   * become cu_seqlens); attnMaskType "arbitrary": [b|1, h|1, sq, skv].
   */
  readonly attentionMask?: PaddingMaskArgument;
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

/**
 * Validates a call on tf.Tensors with core's validation (TE's checks, argument names and defaults;
 * padding masks become cu_seqlens) and returns its AttentionParams and canonical extras.
 */
export function validateTfjsCall(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  config: DotProductAttentionConfig,
  call: DotProductAttentionCall & { readonly softmaxOffset?: tf.Tensor; readonly env?: Env },
): ValidatedCall {
  const info = (t: tf.Tensor | undefined) => (t ? tfjsTensors.info(t) : undefined);
  const bias = call.coreAttentionBias;
  return validateAttentionCall({
    q: info(q)!,
    k: info(k)!,
    v: info(v)!,
    qkvFormat: config.qkvFormat ?? "sbhd",
    attnMaskType: call.attnMaskType ?? config.attnMaskType ?? "causal",
    attentionMask: call.attentionMask,
    windowSize: call.windowSize ?? config.windowSize,
    bottomRightDiagonal: config.bottomRightDiagonal,
    cuSeqlensQ: call.cuSeqlensQ,
    cuSeqlensKv: call.cuSeqlensKv,
    cuSeqlensQPadded: call.cuSeqlensQPadded,
    cuSeqlensKvPadded: call.cuSeqlensKvPadded,
    maxSeqlenQ: call.maxSeqlenQ,
    maxSeqlenKv: call.maxSeqlenKv,
    coreAttentionBiasType: call.coreAttentionBiasType ?? (bias ? "post_scale_bias" : undefined),
    coreAttentionBias: info(bias),
    biasRequiresGrad: bias ? (call.biasRequiresGrad ?? true) : undefined,
    alibiSlopes: call.alibiSlopes,
    softmaxType: config.softmaxType,
    softmaxOffset: info(call.softmaxOffset),
    softmaxScale: config.softmaxScale,
    attentionDropout: config.attentionDropout,
    isTraining: call.isTraining ?? true,
    numAttentionHeads: config.numAttentionHeads,
    kvChannels: config.kvChannels,
    numGqaGroups: config.numGqaGroups,
    device: TFJS_KIND,
    env: call.env,
  });
}

/** The AttentionParams of a call on tf.Tensors (see validateTfjsCall). */
export function callParams(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  config: DotProductAttentionConfig,
  call: DotProductAttentionCall,
): AttentionParams {
  return validateTfjsCall(q, k, v, config, call).params;
}
