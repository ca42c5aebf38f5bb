/**
 * WGSL loads of tensor elements as f32. fp32 tensors are `array<f32>`; fp16 and bf16 tensors are read as
 * `array<u32>` words holding two 16-bit elements, so they work on every adapter, with or without `shader-f16`.
 */
import type { WebGpuDType } from "../tensor.js";
import type { WgslScalar } from "../program.js";

/** The element type a tensor of `dtype` is bound as. */
export const storageElement = (dtype: WebGpuDType): WgslScalar => (dtype === "fp32" ? "f32" : "u32");

/** `fn ld_<name>(i: u32) -> f32`, reading element i of the binding `<name>_buf`. */
export function loadFunction(name: string, dtype: WebGpuDType): string {
  const buf = `${name}_buf`;
  if (dtype === "fp32") return `fn ld_${name}(i: u32) -> f32 { return ${buf}[i]; }\n`;
  const half = `(${buf}[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu`;
  const decode = dtype === "fp16" ? `unpack2x16float(${half}).x` : `bitcast<f32>((${half}) << 16u)`;
  return `fn ld_${name}(i: u32) -> f32 { return ${decode}; }\n`;
}
