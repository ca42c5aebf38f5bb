import { registerBackend } from "@te/core";
import { tfjsNativeBackend } from "./native-backend.js";

export { tfjsTensors, TFJS_KIND } from "./tensor-bridge.js";
export { tfjsNativeBackend, TFJS_NATIVE_RULES } from "./native-backend.js";
export { nativeAttention, nativeAttentionGradients } from "./native-attention.js";

registerBackend(tfjsNativeBackend);
export { dotProductAttention, DotProductAttention } from "./dot-product-attention.js";
export type {
  DotProductAttentionOptions,
  DotProductAttentionResult,
  DotProductAttentionLayerConfig,
} from "./dot-product-attention.js";
export { callParams } from "./call-params.js";
export type { DotProductAttentionConfig, DotProductAttentionCall } from "./call-params.js";
export { isTfjsAttentionBackend } from "./tfjs-backend.js";
export type { TfjsAttentionBackend } from "./tfjs-backend.js";
