import type { AttentionInputs, AttentionParams } from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import { attentionConstants } from "./attention-constants.js";
import { attentionGraph } from "./attention-graph.js";
import { fromBatchFirst, toBatchFirst } from "./layout-convert.js";

/** The tensors of a call that gradients are taken for, in this order. */
export interface Differentiable {
  readonly q: tf.Tensor;
  readonly k: tf.Tensor;
  readonly v: tf.Tensor;
  readonly bias?: tf.Tensor;
  readonly softmaxOffset?: tf.Tensor;
}

export interface NativeOutputs {
  /** In q's format with head dim dv. */
  readonly o: tf.Tensor;
  /** fp32 [b, h, sq] */
  readonly lse: tf.Tensor3D;
}

/**
 * One attention call as tfjs ops, synchronously, so it can run under tf.grad / tf.variableGrads and
 * inside optimizers' minimize. Intermediate tensors are freed by tidy; o and lse are returned.
 * `dropoutScale` is the keep mask divided by (1 - p) in [b, h, sq, skv], or absent.
 */
export function nativeAttention(
  x: Differentiable,
  inputs: AttentionInputs<tf.Tensor>,
  p: AttentionParams,
  dropoutScale?: tf.Tensor,
): NativeOutputs {
  return tf.tidy(() => {
    const constants = attentionConstants(inputs, p);
    const { o, lse } = attentionGraph(
      {
        q: toBatchFirst(x.q, "q", inputs, p),
        k: toBatchFirst(x.k, "kv", inputs, p),
        v: toBatchFirst(x.v, "kv", inputs, p),
        bias: x.bias,
        softmaxOffset: x.softmaxOffset,
        dropoutScale,
      },
      constants,
      p,
    );
    return { o: fromBatchFirst(o, inputs, p), lse };
  });
}

/** Which of bias and softmax offset take gradients in this call. */
export function gradientTargets(inputs: AttentionInputs<tf.Tensor>, p: AttentionParams): Differentiable {
  return {
    q: inputs.q,
    k: inputs.k,
    v: inputs.v,
    bias: p.biasRequiresGrad ? inputs.bias : undefined,
    softmaxOffset: p.softmaxType === "learnable" ? inputs.softmaxOffset : undefined,
  };
}

export interface NativeGradients {
  readonly dq: tf.Tensor;
  readonly dk: tf.Tensor;
  readonly dv: tf.Tensor;
  readonly dbias?: tf.Tensor;
  readonly dSoftmaxOffset?: tf.Tensor;
}

/**
 * Gradients of sum(o * dO) by tfjs autodiff over the forward graph (recomputed, as activation
 * checkpointing does, so forward keeps no intermediate tensors alive).
 */
export function nativeAttentionGradients(
  inputs: AttentionInputs<tf.Tensor>,
  p: AttentionParams,
  dO: tf.Tensor,
  dropoutScale?: tf.Tensor,
): NativeGradients {
  const targets = gradientTargets(inputs, p);
  const list: tf.Tensor[] = [targets.q, targets.k, targets.v];
  if (targets.bias) list.push(targets.bias);
  if (targets.softmaxOffset) list.push(targets.softmaxOffset);
  return tf.tidy(() => {
    const f = (...xs: tf.Tensor[]): tf.Tensor => {
      let at = 3;
      const bias = targets.bias ? xs[at++] : inputs.bias;
      const softmaxOffset = targets.softmaxOffset ? xs[at++] : inputs.softmaxOffset;
      return nativeAttention({ q: xs[0], k: xs[1], v: xs[2], bias, softmaxOffset }, inputs, p, dropoutScale)
        .o;
    };
    const grads = tf.grads(f)(list, dO);
    let at = 3;
    return {
      dq: grads[0],
      dk: grads[1],
      dv: grads[2],
      dbias: targets.bias ? grads[at++] : undefined,
      dSoftmaxOffset: targets.softmaxOffset ? grads[at++] : undefined,
    };
  });
}
