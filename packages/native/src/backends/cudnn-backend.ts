import { type AttentionBackend, type Eligibility, evaluateRules, isFp8 } from "@te/core";
import type { NativeBinding } from "../binding.js";
import type { CudaTensor } from "../device.js";
import { createCudaBackend } from "./cuda-backend.js";
import { createFp8Attention, hasFp8Binding, isFp8Saved } from "./cudnn-fp8.js";
import { cudnnRuleContext, cudnnRules, isFp8Attention } from "./cudnn-rules.js";

/**
 * cuda.cudnn: TE's FusedAttention (F16 sub-backend) through cuDNN's graph API (native/cudnn). Tensors,
 * argument blocks and outputs are those of the other CUDA families (cuda-backend.ts); explain() is
 * TE's cuDNN eligibility table for the loaded cuDNN and the selection's arch (cudnn-rules.ts), then
 * the C family's own reasons (what our graphs do not build yet). FP8 calls (TE's sub-backend 2) go
 * through cudnn-fp8.ts when the addon has the FP8 entry points.
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
  const backwardFromStats = base.backwardFromStats;
  const fp8 =
    hasFp8Binding(binding) && backwardFromStats
      ? createFp8Attention(binding, CUDNN_BACKEND_ID, backwardFromStats)
      : null;
  const fp8Explain = (
    p: Parameters<typeof base.explain>[0],
    context: Parameters<typeof base.explain>[1],
  ): Eligibility => {
    if (fp8 === null)
      return {
        ok: false,
        reasons: [{ rule: "cuda.cudnn.fp8.addon", message: "the addon has no FP8 entry points" }],
      };
    const reason = fp8.explain(p, undefined);
    if (reason !== "") return { ok: false, reasons: [{ rule: "cuda.cudnn.fp8.kernel", message: reason }] };
    // NVTE_FP8_DPA_BWD=0: the backward runs in F16 on sub-backend 1, whose graph must build it.
    if (p.isTraining && p.fp8 !== null && !p.fp8.backward) {
      const edge = isFp8(p.dtype) ? "bf16" : p.dtype;
      return base.explain({ ...p, fp8: null, dtype: edge, biasRequiresGrad: false }, context);
    }
    return { ok: true };
  };
  return {
    ...base,
    ...(fp8 !== null && { dtypes: [...base.dtypes, "fp8e4m3", "fp8e5m2"] }),
    // Sub-backend 0 is never built (see explain): FP8 calls run on 2, the others on 1.
    subBackend: (p) => (isFp8Attention(p) ? 2 : 1),
    explain(p, context) {
      // native/cudnn builds sub-backend 1's graph only (no max512 path): sub-backend 0 is never offered.
      const te = evaluateRules(rules, p, cudnnRuleContext(version, context, false));
      if (!te.ok) return te;
      if (isFp8Attention(p)) return fp8Explain(p, context);
      // Whether cuDNN computes dBias is TE's rule (above); the CUDA families' bias_grad row is about
      // our own kernels, and the C family's explain does not depend on it.
      return base.explain({ ...p, biasRequiresGrad: false }, context);
    },
    forward: (inputs, p) =>
      fp8 !== null && isFp8Attention(p) ? fp8.forward(inputs, p) : base.forward(inputs, p),
    backward: (saved, dO, p) =>
      fp8 !== null && isFp8Saved(saved) ? fp8.backward(saved, dO, p) : base.backward(saved, dO, p),
  };
}
