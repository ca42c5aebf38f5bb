import { registerBackend } from "@te/core";
import { ortFused } from "./backends/ort-fused.js";
import { ortNative } from "./backends/ort-native.js";

export { ortFused } from "./backends/ort-fused.js";
export { ortNative } from "./backends/ort-native.js";
export { configureOrtRuntime, type OrtModule, type OrtRuntimeOptions } from "./runtime/ort-runtime.js";
export { type OrtTensor, ortTensors } from "./tensors.js";

registerBackend(ortNative);
registerBackend(ortFused);
export { type ExportAttentionOptions, type ExportedAttentionModel, exportAttentionModel } from "./export-model.js";
