/**
 * @te/webgpu: Transformer Engine attention in WGSL on GPUBuffer tensors. Importing it registers the backends
 * webgpu.flash (FlashAttention family) and webgpu.unfused (UnfusedDotProductAttention family).
 */
import { registerBackend } from "@te/core";
import { webgpuFlash, webgpuUnfused } from "./backends.js";

registerBackend(webgpuFlash);
registerBackend(webgpuUnfused);

export { webgpuFlash, webgpuUnfused } from "./backends.js";
export { currentDevice, deviceProblem, getDevice, releaseDevice, setDevice } from "./device.js";
export { deviceFacts, type DeviceFacts } from "./limits.js";
export { MAX_HEAD_DIM, TILES, type Tile } from "./flash/tiles.js";
export {
  download,
  hostValues,
  upload,
  WEBGPU_DTYPES,
  type WebGpuDType,
  type WebGpuTensor,
  webgpuBridge,
  wrapBuffer,
  zerosTensor,
} from "./tensor.js";
