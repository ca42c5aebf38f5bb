/**
 * The WGSL every attention program shares about scores: which (query, key) pairs may attend (padding, causal
 * masks with either diagonal, sliding windows, arbitrary masks) and the score of a pair (scale, pre/post-scale
 * bias, ALiBi). Flash and unfused kernels include it, so they agree by construction. Mask and bias kinds are
 * uniforms (uniform branches cost nothing measurable; separate pipelines per kind cost SwiftShader seconds of
 * compilation each). Needs the bindings `aux` and `bias_buf`.
 *
 * Masked pairs get the finite sentinel MASKED instead of -inf: WGSL lets implementations assume no infinities,
 * so every exp() of a score is guarded by an explicit `is_masked` test instead.
 */
import type { AttentionParams } from "@te/core";
import { loadFunction } from "./storage.js";

/** Codes of U.bias_kind. */
export const BIAS_KIND_CODE: Record<AttentionParams["biasType"], number> = {
  no_bias: 0,
  pre_scale_bias: 1,
  post_scale_bias: 2,
  alibi: 3,
};

export const SCORE_WGSL = `${loadFunction("bias", "dt_bias")}
fn bias_index(bi: u32, hi: u32, i: u32, j: u32) -> u32 {
  return U.bias_off + bi * U.bias_sb + hi * U.bias_sh + i * U.bias_si + j * U.bias_sj;
}
fn allowed(s: Seq, bi: u32, hi: u32, i: u32, j: u32) -> bool {
  if (i >= s.lq || j >= s.lk) { return false; }
  let dist = i32(j) - i32(i) - s.off;
  if (U.causal != 0u && dist > 0) { return false; }
  if (U.win_left >= 0 && dist < -U.win_left) { return false; }
  if (U.win_right >= 0 && dist > U.win_right) { return false; }
  if (U.amask != 0u) {
    let m = bi * U.mask_sb + hi * U.mask_sh + i * U.skv + j;
    if (((aux[U.aux_mask + (m >> 2u)] >> ((m & 3u) * 8u)) & 0xffu) != 0u) { return false; }
  }
  return true;
}
fn score(s: Seq, bi: u32, hi: u32, i: u32, j: u32, qk: f32) -> f32 {
  if (!allowed(s, bi, hi, i, j)) { return MASKED; }
  switch U.bias_kind {
    case 1u: { return U.scale * (qk + ld_bias(bias_index(bi, hi, i, j))); }
    case 2u: { return U.scale * qk + ld_bias(bias_index(bi, hi, i, j)); }
    case 3u: {
      let slope = bitcast<f32>(aux[U.aux_slopes + bi * U.slope_sb + hi]);
      return U.scale * qk - slope * abs(f32(i32(i) - i32(j) + s.off));
    }
    default: { return U.scale * qk; }
  }
}
`;

/** Sequences, sentinels and the causal/window bands; needs only `aux`. */
export const SEQUENCE_WGSL = `
const MASKED: f32 = -3.0e38;
fn is_masked(x: f32) -> bool { return x < -1.0e38; }
// -inf for lse outputs; built from a uniform because WGSL rejects infinite constant expressions.
fn neg_inf() -> f32 { return bitcast<f32>(0xff800000u | (U._pad & 0u)); }

struct Seq { lq: u32, lk: u32, q0: u32, k0: u32, off: i32 }
fn seq_of(bi: u32) -> Seq {
  let lq = aux[bi * 4u];
  let lk = aux[bi * 4u + 1u];
  var off = 0;
  if (U.bottom_right != 0u) { off = i32(lk) - i32(lq); }
  return Seq(lq, lk, aux[bi * 4u + 2u], aux[bi * 4u + 3u], off);
}
// Keys [lo, hi) that queries [i_first, i_last] of a sequence may attend: whole tiles outside are skipped.
fn key_range(s: Seq, i_first: u32, i_last: u32) -> vec2<u32> {
  var lo = 0;
  var hi = i32(s.lk);
  if (U.causal != 0u) { hi = min(hi, i32(i_last) + s.off + 1); }
  if (U.win_right >= 0) { hi = min(hi, i32(i_last) + s.off + U.win_right + 1); }
  if (U.win_left >= 0) { lo = max(lo, i32(i_first) + s.off - U.win_left); }
  hi = max(hi, 0);
  lo = min(lo, hi);
  return vec2<u32>(u32(lo), u32(hi));
}
// Queries [lo, hi) that may attend keys [j_first, j_last] of a sequence.
fn query_range(s: Seq, j_first: u32, j_last: u32) -> vec2<u32> {
  var lo = 0;
  var hi = i32(s.lq);
  if (U.causal != 0u) { lo = max(lo, i32(j_first) - s.off); }
  if (U.win_right >= 0) { lo = max(lo, i32(j_first) - s.off - U.win_right); }
  if (U.win_left >= 0) { hi = min(hi, i32(j_last) - s.off + U.win_left + 1); }
  hi = max(hi, 0);
  lo = min(lo, hi);
  return vec2<u32>(u32(lo), u32(hi));
}
`;
