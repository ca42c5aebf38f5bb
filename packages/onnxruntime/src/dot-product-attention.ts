import {
  type AttentionOutput,
  DotProductAttention as CoreDotProductAttention,
  dotProductAttention as coreDotProductAttention,
  type DotProductAttentionCallOptions,
  type DotProductAttentionConfig,
  type DotProductAttentionOptions,
} from "@te/core";
import { type OrtTensor, ortTensors } from "./tensors.js";

/** Per-call options for ORT tensors: TE's call arguments (the tensor bridge is this package's). */
export type OrtAttentionCallOptions = Omit<DotProductAttentionCallOptions<OrtTensor>, "tensors">;
export type OrtAttentionOptions = Omit<DotProductAttentionOptions<OrtTensor>, "tensors">;

/**
 * TE's DotProductAttention module for ONNX Runtime tensors (onnxruntime-node or onnxruntime-web):
 * @te/core's module (TE's arguments, validation, per-call backend selection among ort.te,
 * ort.fused and ort.native) with the ORT tensor bridge. ORT has no autograd: in training mode the
 * result's `backward(dO)` runs the backward graph.
 */
export class DotProductAttention {
  private readonly module: CoreDotProductAttention;

  constructor(config: DotProductAttentionConfig) {
    this.module = new CoreDotProductAttention(config);
  }

  get config(): DotProductAttentionConfig {
    return this.module.config;
  }

  /** Whether forward saves state for backward (and so runs on a backend with a backward). */
  get training(): boolean {
    return this.module.training;
  }

  set training(on: boolean) {
    this.module.training = on;
  }

  train(on = true): this {
    this.module.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  forward(
    q: OrtTensor,
    k: OrtTensor,
    v: OrtTensor,
    options: OrtAttentionCallOptions = {},
  ): Promise<AttentionOutput<OrtTensor>> {
    return this.module.forward(q, k, v, { ...options, tensors: ortTensors });
  }
}

/**
 * The functional form for ORT tensors: heads and head dims from the tensors, format "bshd" and
 * no mask unless given, inference unless `isTraining`.
 */
export function dotProductAttention(
  q: OrtTensor,
  k: OrtTensor,
  v: OrtTensor,
  options: OrtAttentionOptions = {},
): Promise<AttentionOutput<OrtTensor>> {
  return coreDotProductAttention(q, k, v, { ...options, tensors: ortTensors });
}
