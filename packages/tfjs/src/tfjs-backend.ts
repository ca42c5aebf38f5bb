import type { AttentionBackend, AttentionInputs, AttentionParams } from "@te/core";
import type * as tf from "@tensorflow/tfjs-core";

/**
 * A backend for tf.Tensors that can also run synchronously under tfjs's gradient tape, which is what
 * tf.grad, tf.variableGrads and optimizers need (AttentionBackend.forward is async).
 */
export interface TfjsAttentionBackend extends AttentionBackend<tf.Tensor> {
  /** o (q's format, head dim dv) and lse, recorded on the tape so gradients flow to q, k, v, bias, offset. */
  attend(inputs: AttentionInputs<tf.Tensor>, p: AttentionParams): { o: tf.Tensor; lse: tf.Tensor };
  /** Whether `attend` can run now (e.g. its tfjs kernels are registered); absent = always. */
  canAttend?(): boolean;
}

export function isTfjsAttentionBackend(b: AttentionBackend<unknown>): b is TfjsAttentionBackend {
  const t = b as Partial<TfjsAttentionBackend>;
  return typeof t.attend === "function" && (t.canAttend?.() ?? true);
}
