import { registerBackend } from "@te/core";
import { tfjsFusedBackend } from "./fused-backend.js";
import { tfjsNativeBackend } from "./native-backend.js";

export type { DotProductAttentionCall, DotProductAttentionConfig } from "./call-params.js";
export { callParams } from "./call-params.js";
export type {
  DotProductAttentionLayerConfig,
  DotProductAttentionOptions,
  DotProductAttentionResult,
} from "./dot-product-attention.js";
export { DotProductAttention, dotProductAttention } from "./dot-product-attention.js";
export { createHostKernelBackend, NATIVE_CPU_ID, tfjsFusedBackend } from "./fused-backend.js";
export { hostView } from "./host-view.js";
export { nativeAttention, nativeAttentionGradients } from "./native-attention.js";
export { TFJS_NATIVE_RULES, tfjsNativeBackend } from "./native-backend.js";
export { TFJS_KIND, tfjsTensors } from "./tensor-bridge.js";
export type { TfjsAttentionBackend } from "./tfjs-backend.js";
export { isTfjsAttentionBackend } from "./tfjs-backend.js";
export type { SyncHostAttention } from "./tfjs-kernels.js";
export {
  attentionGradKernelName,
  attentionKernelName,
  registerTfjsKernels,
  runAttentionKernel,
  tfjsKernelsReady,
} from "./tfjs-kernels.js";

// Importing @te/tfjs registers its backends (tfjs.fused is eligible once @te/native is imported too).
registerBackend(tfjsNativeBackend);
registerBackend(tfjsFusedBackend);
