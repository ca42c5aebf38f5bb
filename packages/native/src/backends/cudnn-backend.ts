import { type AttentionBackend, evaluateRules } from "@te/core";
import type { NativeBinding } from "../binding.js";
import type { CudaTensor } from "../device.js";
import { createCudaBackend } from "./cuda-backend.js";
import { cudnnRuleContext, cudnnRules } from "./cudnn-rules.js";

/**
 * cuda.cudnn: TE's FusedAttention (F16 sub-backend) through cuDNN's graph API (native/cudnn). Tensors,
 * argument blocks and outputs are those of the other CUDA families (cuda-backend.ts); explain() is
 * TE's cuDNN eligibility table for the loaded cuDNN and the selection's arch (cudnn-rules.ts), then
 * the C family's own reasons (what our graphs do not build yet).
 */
export const CUDNN_BACKEND_ID = "cuda.cudnn";

/** An addon built before cudnnVersion existed has no such method. */
type WithCudnnVersion = NativeBinding & { cudnnVersion?: () => number };

/** cudnnGetVersion() of the cuDNN the addon loads (e.g. 91900), 0 when it cannot be loaded. */
export function loadedCudnnVersion(binding: NativeBinding): number {
  const b = binding as WithCudnnVersion;
  return typeof b.cudnnVersion === "function" ? b.cudnnVersion() : 0;
}

/** Whether the loaded addon was built with the cuda.cudnn family (CUDA builds). */
export function hasCudnnFamily(binding: NativeBinding): boolean {
  return binding.backends().split(",").includes(CUDNN_BACKEND_ID);
}

export function createCudnnBackend(binding: NativeBinding): AttentionBackend<CudaTensor> {
  const base = createCudaBackend(binding, CUDNN_BACKEND_ID);
  const rules = cudnnRules();
  const version = loadedCudnnVersion(binding);
  return {
    ...base,
    explain(p, context) {
      // native/cudnn builds sub-backend 1's graph only (no max512 path): sub-backend 0 is never offered.
      const te = evaluateRules(rules, p, cudnnRuleContext(version, context, false));
      // Whether cuDNN computes dBias is TE's rule (above); the CUDA families' bias_grad row is about
      // our own kernels, and the C family's explain does not depend on it.
      return te.ok ? base.explain({ ...p, biasRequiresGrad: false }, context) : te;
    },
  };
}
