/**
 * Flash-attention forward in WGSL. One workgroup per (BQ query rows, head, batch entry): the query tile stays
 * in workgroup memory while key tiles stream through; scores of a tile go to workgroup memory, each row keeps
 * its running max m and normaliser l (online softmax), and each thread accumulates its slice of the output row
 * in registers, rescaled by exp(m_old - m_new) whenever the max grows. Key tiles outside the causal/window band
 * of the query tile are skipped. Writes o (f32) and lse.
 */
import { attentionWgsl } from "../wgsl/attention-common.js";
import { type Tile, WORKGROUP_SIZE } from "./tiles.js";

/** d and dv: the head-dim classes that size workgroup arrays and accumulators. */
export function flashForwardWgsl(d: number, dv: number, t: Tile): string {
  const tpr = WORKGROUP_SIZE / t.bq;
  return `${attentionWgsl(["q", "k", "v", "sink"], true)}
const BQ = ${t.bq}u;
const BK = ${t.bk}u;
const WG = ${WORKGROUP_SIZE}u;
const TPR = ${tpr}u;
const ACC = ${Math.ceil(dv / tpr)}u;

var<workgroup> q_t: array<f32, ${t.bq * d}>;
// K rows are stored KST = d + 1 floats apart: in the score loop consecutive threads read consecutive keys at
// the same column, and a stride of d (a multiple of 32) would put all of them in one memory bank.
var<workgroup> kv_t: array<f32, ${t.bk * Math.max(d + 1, dv)}>;
var<workgroup> s_t: array<f32, ${t.bq * t.bk}>;
var<workgroup> m_t: array<f32, ${t.bq}>;
var<workgroup> l_t: array<f32, ${t.bq}>;
var<workgroup> a_t: array<f32, ${t.bq}>;

@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let bi = wg.z;
  let hi = wg.y;
  let i0 = wg.x * BQ;
  let s = seq_of(bi);
  let hk = hi / (U.h / U.hg);
  if (i0 >= s.lq) {
    if (tid < BQ && i0 + tid < U.sq) { lse_buf[row_index(bi, hi, i0 + tid)] = neg_inf(); }
    return;
  }
  for (var e = tid; e < BQ * U.d; e += WG) {
    let i = i0 + e / U.d;
    var x = 0.0;
    if (i < s.lq) { x = ld_q(q_index(s, bi, i, hi, e % U.d)); }
    q_t[e] = x;
  }
  if (tid < BQ) {
    m_t[tid] = sink_of(hi);
    l_t[tid] = select(0.0, 1.0, U.softmax != 0u);
  }
  var acc: array<f32, ACC>;
  let r = tid / TPR;
  let lane = tid % TPR;
  let keys = key_range(s, i0, min(i0 + BQ, s.lq) - 1u);
  for (var j0 = (keys.x / BK) * BK; j0 < keys.y; j0 += BK) {
    workgroupBarrier();
    for (var e = tid; e < BK * U.d; e += WG) {
      let j = j0 + e / U.d;
      var x = 0.0;
      if (j < s.lk) { x = ld_k(k_index(s, bi, j, hk, e % U.d)); }
      kv_t[(e / U.d) * (U.d + 1u) + e % U.d] = x;
    }
    workgroupBarrier();
    for (var e = tid; e < BQ * BK; e += WG) {
      let rr = e / BK;
      let jj = e % BK;
      var qk = 0.0;
      for (var c = 0u; c < U.d; c++) { qk += q_t[rr * U.d + c] * kv_t[jj * (U.d + 1u) + c]; }
      s_t[e] = score(s, bi, hi, i0 + rr, j0 + jj, qk);
    }
    workgroupBarrier();
    for (var e = tid; e < BK * U.dv; e += WG) {
      let j = j0 + e / U.dv;
      var x = 0.0;
      if (j < s.lk) { x = ld_v(v_index(s, bi, j, hk, e % U.dv)); }
      kv_t[e] = x;
    }
    if (tid < BQ) {
      let m_old = m_t[tid];
      var mx = m_old;
      for (var jj = 0u; jj < BK; jj++) { mx = max(mx, s_t[tid * BK + jj]); }
      var sum = 0.0;
      for (var jj = 0u; jj < BK; jj++) {
        let x = s_t[tid * BK + jj];
        var p = 0.0;
        if (!is_masked(x)) { p = exp(x - mx); }
        sum += p;
        if (U.dropout_on != 0u) {
          if (dropout_keep(bi, hi, i0 + tid, j0 + jj)) { p *= U.dropout_scale; } else { p = 0.0; }
        }
        s_t[tid * BK + jj] = p;
      }
      // m_old == mx gives 1; m_old == MASKED < mx gives exp(-huge) = 0.
      let alpha = exp(m_old - mx);
      m_t[tid] = mx;
      l_t[tid] = l_t[tid] * alpha + sum;
      a_t[tid] = alpha;
    }
    workgroupBarrier();
    let alpha = a_t[r];
    for (var u = 0u; u < ACC; u++) {
      let c = lane + u * TPR;
      if (c < U.dv) {
        var x = acc[u] * alpha;
        for (var jj = 0u; jj < BK; jj++) { x += s_t[r * BK + jj] * kv_t[jj * U.dv + c]; }
        acc[u] = x;
      }
    }
  }
  workgroupBarrier();
  let i = i0 + r;
  let l = l_t[r];
  if (i < s.lq) {
    var inv = 0.0;
    if (l > 0.0) { inv = 1.0 / l; }
    for (var u = 0u; u < ACC; u++) {
      let c = lane + u * TPR;
      if (c < U.dv) { o_buf[o_index(s, bi, i, hi, c)] = acc[u] * inv; }
    }
  }
  if (lane == 0u && i < U.sq) {
    var lse = neg_inf();
    if (i < s.lq && l > 0.0) { lse = m_t[r] + log(l); }
    lse_buf[row_index(bi, hi, i)] = lse;
  }
}
`;
}
