import { registerBackend } from "@te/core";
import { ortTe } from "./backends/host-kernel-on-ort.js";
import { ortFused } from "./backends/ort-fused.js";
import { ortNative } from "./backends/ort-native.js";

export { hostKernelOnOrt, ortTe } from "./backends/host-kernel-on-ort.js";
export { ortFused } from "./backends/ort-fused.js";
export { ortNative } from "./backends/ort-native.js";
export {
  DotProductAttention,
  dotProductAttention,
  type OrtAttentionCallOptions,
  type OrtAttentionOptions,
} from "./dot-product-attention.js";
export {
  type ExportAttentionOptions,
  type ExportedAttentionModel,
  exportAttentionModel,
} from "./export-model.js";
export { configureOrtRuntime, type OrtModule, type OrtRuntimeOptions } from "./runtime/ort-runtime.js";
export { type OrtTensor, ortTensors } from "./tensors.js";

// Importing the package registers its backends (package.json marks this file as a side effect).
registerBackend(ortNative);
registerBackend(ortFused);
registerBackend(ortTe);
