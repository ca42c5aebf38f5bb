/**
 * The small one-thread-per-item programs both backends share: the row statistics of backward (lse and
 * D = dO . O), the reduction of dS into the bias gradient over broadcast dims, the gradient of the learnable
 * softmax offset, and the conversion of f32 results to fp16/bf16 storage.
 */
import { attentionWgsl } from "./attention-common.js";

const WG = 64;

/** A 1-D index space spread over up to 65535 x N workgroups. */
export function grid1d(items: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(items / WG));
  return [Math.min(groups, 65535), Math.ceil(groups / 65535), 1];
}

const ENTRY = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let idx = (wg.y * nwg.x + wg.x) * ${WG}u + tid;
  if (idx >= U.count) { return; }`;

/** stats = [lse | D] over [b, h, sq]; reads lse_buf, o (f32) and dO. count = b * h * sq. */
export const ROW_STATS_WGSL = `${attentionWgsl(["do"], false)}
${ENTRY}
  let i = idx % U.sq;
  let hi = (idx / U.sq) % U.h;
  let bi = idx / (U.sq * U.h);
  let s = seq_of(bi);
  var dd = 0.0;
  if (i < s.lq) {
    for (var c = 0u; c < U.dv; c++) { dd += ld_do(do_index(s, bi, i, hi, c)) * o_buf[o_index(s, bi, i, hi, c)]; }
  }
  stats[idx] = lse_buf[idx];
  stats[U.count + idx] = dd;
}
`;

/**
 * dBias[bb, hh, i, j] = factor * sum of dS[b, h, i, j] over the batch entries and heads the bias is broadcast
 * over, in a fixed order (deterministic). `ds` is [b, h, sq, skv] from src_at; count = numel(bias).
 */
export function biasGradWgsl(batchBroadcast: boolean, headBroadcast: boolean, preScale: boolean): string {
  const bLoop = batchBroadcast ? "for (var b2 = 0u; b2 < U.b; b2++)" : "for (var b2 = bb; b2 <= bb; b2++)";
  const hLoop = headBroadcast ? "for (var h2 = 0u; h2 < U.h; h2++)" : "for (var h2 = hh; h2 <= hh; h2++)";
  const hDim = headBroadcast ? "1u" : "U.h";
  return `${ENTRY}
  let j = idx % U.skv;
  let i = (idx / U.skv) % U.sq;
  let hh = (idx / (U.skv * U.sq)) % ${hDim};
  let bb = idx / (U.skv * U.sq * ${hDim});
  var x = 0.0;
  ${bLoop} {
    ${hLoop} {
      x += ds[U.src_at + ((b2 * U.h + h2) * U.sq + i) * U.skv + j];
    }
  }
  out[idx] = x${preScale ? " * U.scale" : ""};
}
`;
}

/**
 * The gradient of the learnable softmax offset of each head: the offset is an extra logit without a value
 * row, so dOffset[h] = -sum over valid rows of exp(offset[h] - lse) * D. One workgroup per head, a fixed
 * reduction order.
 */
export const SINK_GRAD_WGSL = `${attentionWgsl(["sink"], false)}
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let hi = wg.x;
  let sink = ld_sink(hi);
  var x = 0.0;
  for (var e = tid; e < U.b * U.sq; e += ${WG}u) {
    let bi = e / U.sq;
    let i = e % U.sq;
    if (i < seq_of(bi).lq) {
      let row = row_index(bi, hi, i);
      x -= exp(sink - stats[row]) * stats[U.b * U.h * U.sq + row];
    }
  }
  part[tid] = x;
  for (var half = ${WG / 2}u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (tid < half) { part[tid] += part[tid + half]; }
  }
  if (tid == 0u) { out[hi] = part[0]; }
}
`;

/** Packs count f32 values from src_at of `src` into 16-bit words of `dst` (round to nearest even). */
export function packWgsl(dtype: "fp16" | "bf16"): string {
  const one = dtype === "fp16" ? "pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu" : "bf16_bits(x)";
  return `fn bf16_bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu) != 0u) { return 0x7fc0u; }
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}
fn half_of(k: u32) -> u32 {
  if (k >= U.count) { return 0u; }
  let x = src[U.src_at + k];
  return ${one};
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let w = (wg.y * nwg.x + wg.x) * ${WG}u + tid;
  if (2u * w >= U.count) { return; }
  dst[w] = half_of(2u * w) | (half_of(2u * w + 1u) << 16u);
}
`;
}
