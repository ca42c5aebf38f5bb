import { registerBackend } from "@te/core";
import { tfjsFusedBackend } from "./fused-backend.js";
import { tfjsNativeBackend } from "./native-backend.js";

export { TFJS_KIND, tfjsTensors } from "./tensor-bridge.js";
export { TFJS_NATIVE_RULES, tfjsNativeBackend } from "./native-backend.js";
export { nativeAttention, nativeAttentionGradients } from "./native-attention.js";
export { NATIVE_CPU_ID, createHostKernelBackend, tfjsFusedBackend } from "./fused-backend.js";
export { hostView } from "./host-view.js";
export {
  attentionGradKernelName,
  attentionKernelName,
  registerTfjsKernels,
  runAttentionKernel,
  tfjsKernelsReady,
} from "./tfjs-kernels.js";
export type { SyncHostAttention } from "./tfjs-kernels.js";
export { isTfjsAttentionBackend } from "./tfjs-backend.js";
export type { TfjsAttentionBackend } from "./tfjs-backend.js";
export { callParams } from "./call-params.js";
export type { DotProductAttentionCall, DotProductAttentionConfig } from "./call-params.js";
export { DotProductAttention, dotProductAttention } from "./dot-product-attention.js";
export type {
  DotProductAttentionLayerConfig,
  DotProductAttentionOptions,
  DotProductAttentionResult,
} from "./dot-product-attention.js";

// Importing @te/tfjs registers its backends (tfjs.fused is eligible once @te/native is imported too).
registerBackend(tfjsNativeBackend);
registerBackend(tfjsFusedBackend);
