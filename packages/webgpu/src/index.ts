/**
 * @te/webgpu: Transformer Engine attention in WGSL on GPUBuffer tensors. Importing it registers the backends
 * webgpu.flash (FlashAttention family) and webgpu.unfused (UnfusedDotProductAttention family).
 */
import { registerBackend } from "@te/core";
import { webgpuFlash, webgpuUnfused } from "./backends.js";

registerBackend(webgpuFlash);
registerBackend(webgpuUnfused);

export { webgpuFlash, webgpuUnfused } from "./backends.js";
export { releasePooledBuffers } from "./buffer-pool.js";
export {
  adapterInfoOf,
  currentDevice,
  deviceProblem,
  getDevice,
  releaseDevice,
  setDevice,
} from "./device.js";
export { chooseMatrixBackwardTile, MATRIX_BACKWARD_TILES } from "./flash/matrix-backward-tiles.js";
export { chooseMatrixTile, MATRIX_TILES, type MatrixTile } from "./flash/matrix-tiles.js";
export { MAX_HEAD_DIM, TILES, type Tile } from "./flash/tiles.js";
export { type DeviceFacts, deviceFacts } from "./limits.js";
export { finishPassTimes, type PassTime, recordPassTimes } from "./pass-times.js";
export {
  disposeTensor,
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
