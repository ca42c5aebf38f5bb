/**
 * Flash-attention backward in WGSL, deterministic without float atomics (WGSL has none): P is recomputed from
 * the saved lse, one pass owns each gradient.
 * - dK/dV: one workgroup per (BK keys, kv head, batch entry) walks every query tile of every query head that
 *   shares the kv head (GQA/MQA), accumulating its keys' rows of dK and dV in registers.
 * - dQ: one workgroup per (BQ queries, head, batch entry) walks the key tiles; it also writes dS for dBias.
 * Both read the row statistics (lse, D = dO . O) made by the stats pass.
 */
import { attentionWgsl } from "../wgsl/attention-common.js";
import { type Tile, WORKGROUP_SIZE } from "./tiles.js";

/** Loads of a query tile (q rows, dO rows, lse and D) and of a key tile (k rows, v rows) into workgroup memory. */
function tileLoads(): string {
  return `
fn load_query_tile(s: Seq, bi: u32, hi: u32, i0: u32, tid: u32) {
  for (var e = tid; e < BQ * U.d; e += WG) {
    let i = i0 + e / U.d;
    var x = 0.0;
    if (i < s.lq) { x = ld_q(q_index(s, bi, i, hi, e % U.d)); }
    q_t[e] = x;
  }
  for (var e = tid; e < BQ * U.dv; e += WG) {
    let i = i0 + e / U.dv;
    var x = 0.0;
    if (i < s.lq) { x = ld_do(do_index(s, bi, i, hi, e % U.dv)); }
    do_t[e] = x;
  }
  if (tid < BQ) {
    let i = i0 + tid;
    var lse = 0.0;
    var dd = 0.0;
    if (i < s.lq) {
      lse = stats[row_index(bi, hi, i)];
      dd = stats[U.b * U.h * U.sq + row_index(bi, hi, i)];
    }
    st_t[tid] = lse;
    st_t[BQ + tid] = dd;
  }
}
fn load_key_tile(s: Seq, bi: u32, hk: u32, j0: u32, tid: u32) {
  for (var e = tid; e < BK * U.d; e += WG) {
    let j = j0 + e / U.d;
    var x = 0.0;
    if (j < s.lk) { x = ld_k(k_index(s, bi, j, hk, e % U.d)); }
    k_t[(e / U.d) * (U.d + 1u) + e % U.d] = x;
  }
  for (var e = tid; e < BK * U.dv; e += WG) {
    let j = j0 + e / U.dv;
    var x = 0.0;
    if (j < s.lk) { x = ld_v(v_index(s, bi, j, hk, e % U.dv)); }
    v_t[(e / U.dv) * (U.dv + 1u) + e % U.dv] = x;
  }
}
// (P', dS) of tile element (rr, jj).
fn tile_grad(s: Seq, bi: u32, hi: u32, i0: u32, j0: u32, rr: u32, jj: u32) -> vec2<f32> {
  var qk = 0.0;
  for (var c = 0u; c < U.d; c++) { qk += q_t[rr * U.d + c] * k_t[jj * (U.d + 1u) + c]; }
  var dp = 0.0;
  for (var c = 0u; c < U.dv; c++) { dp += do_t[rr * U.dv + c] * v_t[jj * (U.dv + 1u) + c]; }
  let x = score(s, bi, hi, i0 + rr, j0 + jj, qk);
  return grad_of_score(bi, hi, i0 + rr, j0 + jj, x, dp, st_t[rr], st_t[BQ + rr]);
}
`;
}

function header(d: number, dv: number, t: Tile): string {
  return `${attentionWgsl(["q", "k", "v", "do"], true)}
const BQ = ${t.bq}u;
const BK = ${t.bk}u;
const WG = ${WORKGROUP_SIZE}u;
var<workgroup> q_t: array<f32, ${t.bq * d}>;
var<workgroup> do_t: array<f32, ${t.bq * dv}>;
// Key and value rows are stored d + 1 (dv + 1) floats apart: tile_grad has consecutive threads read consecutive
// rows at the same column, and a stride that is a multiple of 32 would put all of them in one memory bank.
var<workgroup> k_t: array<f32, ${t.bk * (d + 1)}>;
var<workgroup> v_t: array<f32, ${t.bk * (dv + 1)}>;
var<workgroup> st_t: array<f32, ${2 * t.bq}>;
${tileLoads()}`;
}

/** dK and dV into `out` (dK first, dV at U.dv_at). */
export function flashDkDvWgsl(d: number, dv: number, t: Tile): string {
  const tpk = WORKGROUP_SIZE / t.bk;
  return `${header(d, dv, t)}
const TPK = ${tpk}u;
var<workgroup> p_t: array<f32, ${t.bq * t.bk}>;
var<workgroup> ds_t: array<f32, ${t.bq * t.bk}>;

@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let bi = wg.z;
  let hk = wg.y;
  let j0 = wg.x * BK;
  let s = seq_of(bi);
  if (j0 >= s.lk) { return; }
  load_key_tile(s, bi, hk, j0, tid);
  let group = U.h / U.hg;
  let queries = query_range(s, j0, min(j0 + BK, s.lk) - 1u);
  var dk_acc: array<f32, ${Math.ceil(d / tpk)}>;
  var dv_acc: array<f32, ${Math.ceil(dv / tpk)}>;
  let kr = tid / TPK;
  let lane = tid % TPK;
  for (var g = 0u; g < group; g++) {
    let hi = hk * group + g;
    for (var i0 = (queries.x / BQ) * BQ; i0 < queries.y; i0 += BQ) {
      workgroupBarrier();
      load_query_tile(s, bi, hi, i0, tid);
      workgroupBarrier();
      for (var e = tid; e < BQ * BK; e += WG) {
        let g2 = tile_grad(s, bi, hi, i0, j0, e / BK, e % BK);
        p_t[e] = g2.x;
        ds_t[e] = g2.y;
      }
      workgroupBarrier();
      for (var u = 0u; u < ${Math.ceil(dv / tpk)}u; u++) {
        let c = lane + u * TPK;
        if (c < U.dv) {
          var x = 0.0;
          for (var rr = 0u; rr < BQ; rr++) { x += p_t[rr * BK + kr] * do_t[rr * U.dv + c]; }
          dv_acc[u] += x;
        }
      }
      for (var u = 0u; u < ${Math.ceil(d / tpk)}u; u++) {
        let c = lane + u * TPK;
        if (c < U.d) {
          var x = 0.0;
          for (var rr = 0u; rr < BQ; rr++) { x += ds_t[rr * BK + kr] * q_t[rr * U.d + c]; }
          dk_acc[u] += x;
        }
      }
    }
  }
  let j = j0 + kr;
  if (j < s.lk) {
    for (var u = 0u; u < ${Math.ceil(d / tpk)}u; u++) {
      let c = lane + u * TPK;
      if (c < U.d) { out[dk_index(s, bi, j, hk, c)] = dk_acc[u] * U.scale; }
    }
    for (var u = 0u; u < ${Math.ceil(dv / tpk)}u; u++) {
      let c = lane + u * TPK;
      if (c < U.dv) { out[U.dv_at + dv_index(s, bi, j, hk, c)] = dv_acc[u]; }
    }
  }
}
`;
}

/** dQ into `out`; with U.bias_grad also dS of every (b, h, i, j) at U.dbias_at. */
export function flashDqWgsl(d: number, dv: number, t: Tile): string {
  const tpr = WORKGROUP_SIZE / t.bq;
  const acc = Math.ceil(d / tpr);
  return `${header(d, dv, t)}
const TPR = ${tpr}u;
var<workgroup> ds_t: array<f32, ${t.bq * t.bk}>;

@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let bi = wg.z;
  let hi = wg.y;
  let i0 = wg.x * BQ;
  let s = seq_of(bi);
  if (i0 >= s.lq) { return; }
  let hk = hi / (U.h / U.hg);
  load_query_tile(s, bi, hi, i0, tid);
  var dq_acc: array<f32, ${acc}>;
  let r = tid / TPR;
  let lane = tid % TPR;
  let keys = key_range(s, i0, min(i0 + BQ, s.lq) - 1u);
  for (var j0 = (keys.x / BK) * BK; j0 < keys.y; j0 += BK) {
    workgroupBarrier();
    load_key_tile(s, bi, hk, j0, tid);
    workgroupBarrier();
    for (var e = tid; e < BQ * BK; e += WG) {
      let rr = e / BK;
      let jj = e % BK;
      let ds = tile_grad(s, bi, hi, i0, j0, rr, jj).y;
      ds_t[e] = ds;
      if (U.bias_grad != 0u && i0 + rr < s.lq && j0 + jj < s.lk) { out[U.dbias_at + row_index(bi, hi, i0 + rr) * U.skv + j0 + jj] = ds; }
    }
    workgroupBarrier();
    for (var u = 0u; u < ${acc}u; u++) {
      let c = lane + u * TPR;
      if (c < U.d) {
        var x = 0.0;
        for (var jj = 0u; jj < BK; jj++) { x += ds_t[r * BK + jj] * k_t[jj * (U.d + 1u) + c]; }
        dq_acc[u] += x;
      }
    }
  }
  let i = i0 + r;
  if (i < s.lq) {
    for (var u = 0u; u < ${acc}u; u++) {
      let c = lane + u * TPR;
      if (c < U.d) { out[dq_index(s, bi, i, hi, c)] = dq_acc[u] * U.scale; }
    }
  }
}
`;
}
