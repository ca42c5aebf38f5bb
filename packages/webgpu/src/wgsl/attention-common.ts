/**
 * WGSL shared by the flash and unfused programs beyond the score: element addresses of every tensor of a call
 * (see call-layout.ts for the uniforms), the softmax's extra logit, and the per-pair gradient of the softmax,
 * so both backends compute dS = P * (dP - D) the same way, dropout included.
 */
import { DROPOUT_WGSL } from "./dropout.js";
import { SCORE_WGSL, SEQUENCE_WGSL } from "./score.js";
import { loadFunction } from "./storage.js";

export type TensorName = "q" | "k" | "v" | "do" | "sink";

const DTYPE_FIELD: Record<TensorName, string> = { q: "dt_qkv", k: "dt_qkv", v: "dt_qkv", do: "dt_qkv", sink: "dt_sink" };

const INDEXING = `
fn q_index(s: Seq, bi: u32, i: u32, hi: u32, c: u32) -> u32 { return U.q_off + bi * U.q_sb + (s.q0 + i) * U.q_ss + hi * U.q_sh + c * U.q_sd; }
fn k_index(s: Seq, bi: u32, j: u32, hk: u32, c: u32) -> u32 { return U.k_off + bi * U.k_sb + (s.k0 + j) * U.k_ss + hk * U.k_sh + c * U.k_sd; }
fn v_index(s: Seq, bi: u32, j: u32, hk: u32, c: u32) -> u32 { return U.v_off + bi * U.v_sb + (s.k0 + j) * U.v_ss + hk * U.v_sh + c * U.v_sd; }
fn do_index(s: Seq, bi: u32, i: u32, hi: u32, c: u32) -> u32 { return U.do_off + bi * U.do_sb + (s.q0 + i) * U.do_ss + hi * U.do_sh + c * U.do_sd; }
fn o_index(s: Seq, bi: u32, i: u32, hi: u32, c: u32) -> u32 { return bi * U.o_sb + (s.q0 + i) * U.o_ss + hi * U.o_sh + c; }
fn dq_index(s: Seq, bi: u32, i: u32, hi: u32, c: u32) -> u32 { return bi * U.dq_sb + (s.q0 + i) * U.dq_ss + hi * U.dq_sh + c; }
fn dk_index(s: Seq, bi: u32, j: u32, hk: u32, c: u32) -> u32 { return bi * U.dk_sb + (s.k0 + j) * U.dk_ss + hk * U.dk_sh + c; }
fn dv_index(s: Seq, bi: u32, j: u32, hk: u32, c: u32) -> u32 { return bi * U.dv_sb + (s.k0 + j) * U.dv_ss + hk * U.dv_sh + c; }
// Row statistics [b, h, sq]: lse in the first half of the stats buffer, D = dO . O in the second.
fn row_index(bi: u32, hi: u32, i: u32) -> u32 { return (bi * U.h + hi) * U.sq + i; }
`;

const SINK = `
// The row's extra softmax logit (U.softmax: 1 off_by_one, 2 learnable), or MASKED for vanilla (0).
fn sink_of(hi: u32) -> f32 {
  if (U.softmax == 1u) { return 0.0; }
  if (U.softmax == 2u) { return ld_sink(hi); }
  return MASKED;
}
`;

const GRADIENT = `
// The gradient of one score: (P after dropout, for dV; dS = P * (dP' - D)), P recomputed from the lse.
fn grad_of_score(bi: u32, hi: u32, i: u32, j: u32, x: f32, dp: f32, lse: f32, dd: f32) -> vec2<f32> {
  if (is_masked(x)) { return vec2<f32>(0.0, 0.0); }
  let p = exp(x - lse);
  if (U.dropout_on != 0u) {
    if (!dropout_keep(bi, hi, i, j)) { return vec2<f32>(0.0, -p * dd); }
    return vec2<f32>(p * U.dropout_scale, p * (dp * U.dropout_scale - dd));
  }
  return vec2<f32>(p, p * (dp - dd));
}
`;

/**
 * Sequences, addresses and loads of `tensors`; with `scores`, also masks, biases, dropout and dS (these read
 * `bias_buf`, which such programs must bind).
 */
export function attentionWgsl(tensors: readonly TensorName[], scores: boolean): string {
  const loads = tensors.map((t) => loadFunction(t, DTYPE_FIELD[t])).join("");
  const sink = tensors.includes("sink") ? SINK : "";
  return `${SEQUENCE_WGSL}${INDEXING}${loads}${sink}${scores ? `${SCORE_WGSL}${DROPOUT_WGSL}${GRADIENT}` : ""}`;
}
