import {
  type AttentionInputs,
  type AttentionParams,
  evaluateRules,
  type ForwardResult,
  type Gradients,
  type Rule,
  type SavedForBackward,
  teRank,
} from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import { dropoutKeepScale } from "./dropout-mask.js";
import { nativeAttention, nativeAttentionGradients } from "./native-attention.js";
import { tfjsTensors } from "./tensor-bridge.js";
import type { TfjsAttentionBackend } from "./tfjs-backend.js";

/**
 * tfjs-core alone registers no gradients: @tensorflow/tfjs (and tfjs-node, which loads it) does. The
 * ops the graph differentiates through are checked by one of them.
 */
function tfjsGradientsRegistered(): boolean {
  return tf.getGradient("BatchMatMul") !== undefined;
}

/** Why tfjs.native cannot run a call; every other feature (masks, windows, biases, ALiBi, GQA, thd, softmax types) it runs. */
export const TFJS_NATIVE_RULES: readonly Rule[] = [
  {
    id: "tfjs.native.fp8",
    rejects: (p) => p.fp8 !== null,
    message: "does not support FP8 attention (tfjs has no FP8 dtype)",
  },
  {
    id: "tfjs.native.gradients",
    rejects: (p) => p.isTraining && !tfjsGradientsRegistered(),
    message:
      "needs tfjs's gradients for training, which are not registered (import @tensorflow/tfjs or @tensorflow/tfjs-node, not only @tensorflow/tfjs-core)",
  },
  {
    id: "tfjs.native.context_parallel",
    rejects: (p) => p.cpSize > 1,
    message: "does not support context parallelism",
  },
];

/** What forward keeps for backward: the caller's tensors (not copies; the caller keeps them alive until backward). */
class NativeSaved implements SavedForBackward {
  constructor(
    readonly inputs: AttentionInputs<tf.Tensor>,
    readonly dropoutScale: tf.Tensor | undefined,
  ) {}
  release(): void {
    this.dropoutScale?.dispose();
  }
}

/**
 * tfjs.native: TE's UnfusedDotProductAttention as tfjs ops (matMul, softmax, where), on whatever tfjs
 * backend is active (cpu, wasm, webgl, webgpu). Gradients by tfjs autodiff.
 */
export const tfjsNativeBackend: TfjsAttentionBackend = {
  specificationVersion: "v1",
  id: "tfjs.native",
  family: "UnfusedDotProductAttention",
  tensors: tfjsTensors,
  dtypes: ["fp32"],
  rank: (context) => teRank("UnfusedDotProductAttention", context.cudaArch),
  explain: (p: AttentionParams) => evaluateRules(TFJS_NATIVE_RULES, p, undefined),
  attend(inputs: AttentionInputs<tf.Tensor>, p: AttentionParams) {
    const scale = dropoutKeepScale(inputs, p);
    try {
      return nativeAttention(inputs, inputs, p, scale ?? undefined);
    } finally {
      scale?.dispose();
    }
  },
  async forward(inputs: AttentionInputs<tf.Tensor>, p: AttentionParams): Promise<ForwardResult<tf.Tensor>> {
    const dropoutScale = dropoutKeepScale(inputs, p) ?? undefined;
    const { o, lse } = nativeAttention(inputs, inputs, p, dropoutScale);
    return { o, lse, saved: new NativeSaved(inputs, dropoutScale) };
  },
  async backward(saved: SavedForBackward, dO: tf.Tensor, p: AttentionParams): Promise<Gradients<tf.Tensor>> {
    const s = saved as NativeSaved;
    return nativeAttentionGradients(s.inputs, p, dO, s.dropoutScale);
  },
};
