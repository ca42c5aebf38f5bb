/** The two WebGPU backends. */
import { makeBackend } from "./attention-backend.js";
import { flashKernels } from "./flash/kernels.js";
import { unfusedKernels } from "./unfused/kernels.js";

export const webgpuFlash = makeBackend(flashKernels);
export const webgpuUnfused = makeBackend(unfusedKernels);
