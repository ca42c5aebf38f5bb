/**
 * WGSL loads of tensor elements as f32. Every tensor is bound as `array<u32>`: fp32 elements are bit-cast,
 * fp16 and bf16 elements are unpacked from words holding two, so 16-bit storage works on every adapter (with or
 * without `shader-f16`). The dtype is a uniform (0 fp32, 1 fp16, 2 bf16), so one pipeline serves all three.
 */
import type { WebGpuDType } from "../tensor.js";

export const DTYPE_CODE: Record<WebGpuDType, number> = { fp32: 0, fp16: 1, bf16: 2 };

/** `fn ld_<name>(i: u32) -> f32`, reading element i of the binding `<name>_buf` whose dtype code is `U.<dtypeField>`. */
export function loadFunction(name: string, dtypeField: string): string {
  const buf = `${name}_buf`;
  return `fn ld_${name}(i: u32) -> f32 {
  let dt = U.${dtypeField};
  if (dt == 0u) { return bitcast<f32>(${buf}[i]); }
  let bits = (${buf}[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
  if (dt == 1u) { return unpack2x16float(bits).x; }
  return bitcast<f32>(bits << 16u);
}
`;
}
