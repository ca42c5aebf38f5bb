/**
 * Test helper: a WebGPU device (SwiftShader's Vulkan driver on CPU-only machines, see vitest.config.ts), or
 * the reason there is none, printed by the tests that skip.
 */
import { getDevice } from "../src/index.js";

export async function deviceOrReason(): Promise<{ device: GPUDevice | null; reason: string }> {
  try {
    return { device: await getDevice(), reason: "" };
  } catch (e) {
    const reason = `no WebGPU adapter: ${(e as Error).message}`;
    console.warn(`[@te/webgpu tests] skipping: ${reason}`);
    return { device: null, reason };
  }
}
