/**
 * @te/native: TE's native kernels through the te C API (native/include/te). Importing it registers
 * native.cpu (when the addon loads) and records the CUDA arch of the first GPU in core's selection.
 */
import { registerBackend } from "@te/core";
import { createCudaBackend, cudaBackendIds } from "./backends/cuda-backend.js";
import { createCudnnBackend, hasCudnnFamily } from "./backends/cudnn-backend.js";
import { createNativeCpuBackend } from "./cpu-backend.js";
import { detectCudaArch } from "./device.js";
import { tryLoadBinding } from "./loader.js";

export { type CudaBackendId, createCudaBackend, cudaBackendIds, cudaRules } from "./backends/cuda-backend.js";
export {
  CUDNN_BACKEND_ID,
  createCudnnBackend,
  hasCudnnFamily,
  loadedCudnnVersion,
} from "./backends/cudnn-backend.js";
export {
  type CudnnBias,
  type CudnnRuleContext,
  cudnnBiasOf,
  cudnnRuleContext,
  cudnnRules,
  cudnnVersionString,
  FUSED_SUB_BACKEND_NAMES,
  type FusedSubBackend,
  fusedSubBackend,
  isFp8Attention,
} from "./backends/cudnn-rules.js";
// The device copy of an FP8 recipe state (cuda.cudnn): exported for the GPU checks against core's recipe.
export {
  DeviceFp8State,
  decodeFp8State,
  deviceStateFor,
  encodeFp8State,
  FP8_TENSORS,
  fp8StateBytes,
  hasFp8StateBinding,
  META_FLOATS as FP8_META_FLOATS,
  slotOf as fp8SlotOf,
} from "./backends/fp8-device-state.js";
export type * from "./binding.js";
export * from "./cp/index.js";
export { createNativeCpuBackend, NATIVE_CPU_ID, NATIVE_CPU_RULES, nativeCpuBackend } from "./cpu-backend.js";
export {
  allocateTensor,
  type CudaTensor,
  cudaTensors,
  detectCudaArch,
  deviceInfo,
  downloadTensor,
  uploadTensor,
} from "./device.js";
export { addonCandidates, loadBinding, loadError, tryLoadBinding } from "./loader.js";
export { nativeDesc } from "./native-desc.js";

const binding = tryLoadBinding();
if (binding) {
  registerBackend(createNativeCpuBackend(binding));
  detectCudaArch();
  for (const id of cudaBackendIds(binding)) registerBackend(createCudaBackend(binding, id));
  if (hasCudnnFamily(binding)) registerBackend(createCudnnBackend(binding));
}
