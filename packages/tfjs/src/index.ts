import { registerBackend } from "@te/core";
import { tfjsNativeBackend } from "./native-backend.js";

export { tfjsTensors, TFJS_KIND } from "./tensor-bridge.js";
export { tfjsNativeBackend, TFJS_NATIVE_RULES } from "./native-backend.js";
export { nativeAttention, nativeAttentionGradients } from "./native-attention.js";

registerBackend(tfjsNativeBackend);
