import {
  type AttentionInputs,
  BackendError,
  listBackends,
  type SelectionOptions,
  selectBackend,
} from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import {
  type DotProductAttentionCall,
  type DotProductAttentionConfig,
  validateTfjsCall,
} from "./call-params.js";
import { TFJS_KIND } from "./tensor-bridge.js";
import { isTfjsAttentionBackend } from "./tfjs-backend.js";

export interface DotProductAttentionOptions extends DotProductAttentionConfig, DotProductAttentionCall {
  /** The learnable softmax offset [h] (softmaxType "learnable"). */
  readonly softmaxOffset?: tf.Tensor;
  /** Dropout RNG seed and offset (core's counter RNG: the same pair drops the same elements on every backend). */
  readonly dropoutSeed?: number;
  readonly dropoutOffset?: number;
  /** Per-call selection overrides (NVTE_* controls, backend lists). */
  readonly selection?: SelectionOptions;
}

export interface DotProductAttentionResult {
  /** In q's format with head dim dv: [b, sq, h, dv], [sq, b, h, dv] or [tq, h, dv]. */
  readonly o: tf.Tensor;
  /** fp32 [b, h, sq]. */
  readonly lse: tf.Tensor;
  /** The id of the backend that ran. */
  readonly backend: string;
}

/**
 * Dot-product attention on tf.Tensors, synchronously and differentiably: the backend is selected per
 * call (TE's order and NVTE_* controls) among the tfjs backends, and its ops are recorded on tfjs's
 * tape, so tf.grad, tf.variableGrads and optimizers train through it.
 */
export function dotProductAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: DotProductAttentionOptions,
): DotProductAttentionResult {
  const call = validateTfjsCall(q, k, v, options, { ...options, env: options.selection?.env });
  const p = call.params;
  // Backends with only the async interface cannot be recorded on the tape; they are not candidates here.
  const untaped = listBackends()
    .filter((b) => b.tensors.kind === TFJS_KIND && !isTfjsAttentionBackend(b))
    .map((b) => b.id);
  const selection = options.selection ?? {};
  const { backend } = selectBackend(p, { ...selection, exclude: [...(selection.exclude ?? []), ...untaped] });
  if (!isTfjsAttentionBackend(backend)) {
    throw new BackendError(
      backend.id,
      "was selected for tf.Tensors but cannot run under tfjs's gradient tape",
    );
  }
  const inputs: AttentionInputs<tf.Tensor> = {
    q,
    k,
    v,
    bias: options.coreAttentionBias,
    softmaxOffset: options.softmaxOffset,
    attnMask: call.attnMask,
    alibiSlopes: call.alibiSlopes,
    cuSeqlensQ: call.cuSeqlensQ,
    cuSeqlensKv: call.cuSeqlensKv,
    cuSeqlensQPadded: call.cuSeqlensQPadded,
    cuSeqlensKvPadded: call.cuSeqlensKvPadded,
    dropoutSeed: options.dropoutSeed,
    dropoutOffset: options.dropoutOffset,
  };
  const { o, lse } = backend.attend(inputs, p);
  return { o, lse, backend: backend.id };
}

/** Layer construction options: TE's arguments plus selection overrides and the dropout seed. */
export interface DotProductAttentionLayerConfig extends DotProductAttentionConfig {
  readonly selection?: SelectionOptions;
  /** Seed of this layer's dropout stream; each call advances the stream's offset. Default: random. */
  readonly seed?: number;
}

/**
 * TE's DotProductAttention module for tf.Tensors. `apply` returns the attention output with heads
 * flattened as TE does ([b, sq, h*dv], [sq, b, h*dv] or [tq, h*dv]). A learnable softmax owns its
 * offset as a trainable tf.Variable (zeros, like TE's softmax_offset parameter).
 */
export class DotProductAttention {
  readonly config: DotProductAttentionLayerConfig;
  readonly softmaxOffset: tf.Variable | null;
  /** The backend that ran the last call. */
  lastBackend: string | null = null;
  private readonly seed: number;
  private dropoutCalls = 0;

  constructor(config: DotProductAttentionLayerConfig) {
    this.config = config;
    this.seed = config.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.softmaxOffset =
      config.softmaxType === "learnable" ? tf.variable(tf.zeros([config.numAttentionHeads]), true) : null;
  }

  apply(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, call: DotProductAttentionCall = {}): tf.Tensor {
    const dropout = (this.config.attentionDropout ?? 0) > 0 && call.isTraining !== false;
    const dropoutOffset = dropout ? this.dropoutCalls++ : 0;
    return tf.tidy(() => {
      const result = dotProductAttention(q, k, v, {
        ...this.config,
        ...call,
        attentionDropout: dropout ? this.config.attentionDropout : 0,
        softmaxOffset: this.softmaxOffset ?? undefined,
        dropoutSeed: this.seed,
        dropoutOffset,
      });
      this.lastBackend = result.backend;
      const shape = result.o.shape;
      return tf.reshape(result.o, [...shape.slice(0, -2), shape[shape.length - 2] * shape[shape.length - 1]]);
    });
  }

  /** The layer's trainable variables (the learnable softmax offset, if any). */
  get trainableWeights(): tf.Variable[] {
    return this.softmaxOffset ? [this.softmaxOffset] : [];
  }

  dispose(): void {
    this.softmaxOffset?.dispose();
  }
}
