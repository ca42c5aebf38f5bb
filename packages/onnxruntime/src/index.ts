import { registerBackend } from "@te/core";
import { ortNative } from "./backends/ort-native.js";

export { ortNative } from "./backends/ort-native.js";
export { configureOrtRuntime, type OrtRuntimeOptions } from "./runtime/ort-runtime.js";
export { type OrtTensor, ortTensors } from "./tensors.js";

registerBackend(ortNative);
