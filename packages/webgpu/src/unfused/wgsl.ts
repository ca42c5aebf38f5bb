/**
 * The unfused attention programs: every step a separate pass over a [b, h, sq, skv] buffer, one thread per
 * output element, as framework-native attention does (scores = q.k^T, softmax, P.V). Simple and independent of
 * workgroup memory, at the cost of memory traffic and a scores buffer that grows with sq * skv.
 */
import { attentionWgsl } from "../wgsl/attention-common.js";

const WG = 64;
const ENTRY = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {`;
// x: the fastest index (key or channel) in tiles of 64, y: the row, z: batch entry * heads.
const COORDS = `  let x = wg.x * ${WG}u + tid;
  let row = wg.y;
  let bi = wg.z / U.h;
  let hi = wg.z % U.h;
  let s = seq_of(bi);
  let hk = hi / (U.h / U.hg);`;

/** scores[b, h, i, j] (MASKED where not allowed). */
export const SCORES_WGSL = `${attentionWgsl(["q", "k"], true)}
${ENTRY}
${COORDS}
  let i = row;
  let j = x;
  if (j >= U.skv) { return; }
  var qk = 0.0;
  if (i < s.lq && j < s.lk) {
    for (var c = 0u; c < U.d; c++) { qk += ld_q(q_index(s, bi, i, hi, c)) * ld_k(k_index(s, bi, j, hk, c)); }
  }
  scores[row_index(bi, hi, i) * U.skv + j] = score(s, bi, hi, i, j, qk);
}
`;

/** In place: scores of a row -> probabilities (after dropout); writes the row's lse. One thread per row. */
export const SOFTMAX_WGSL = `${attentionWgsl(["sink"], true)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let idx = (wg.y * nwg.x + wg.x) * ${WG}u + tid;
  if (idx >= U.count) { return; }
  let i = idx % U.sq;
  let hi = (idx / U.sq) % U.h;
  let bi = idx / (U.sq * U.h);
  let base = idx * U.skv;
  let sink = sink_of(hi);
  var mx = sink;
  for (var j = 0u; j < U.skv; j++) { mx = max(mx, scores[base + j]); }
  var l = 0.0;
  if (U.softmax != 0u) { l = exp(sink - mx); }
  for (var j = 0u; j < U.skv; j++) {
    let x = scores[base + j];
    if (!is_masked(x)) { l += exp(x - mx); }
  }
  var inv = 0.0;
  if (l > 0.0) { inv = 1.0 / l; }
  for (var j = 0u; j < U.skv; j++) {
    let x = scores[base + j];
    var p = 0.0;
    if (!is_masked(x)) { p = exp(x - mx) * inv; }
    if (U.dropout_on != 0u) {
      if (dropout_keep(bi, hi, i, j)) { p *= U.dropout_scale; } else { p = 0.0; }
    }
    scores[base + j] = p;
  }
  var lse = neg_inf();
  if (i < seq_of(bi).lq && l > 0.0) { lse = mx + log(l); }
  lse_buf[idx] = lse;
}
`;

/** o[i, c] = sum_j P[i, j] v[j, c]. */
export const PV_WGSL = `${attentionWgsl(["v"], false)}
${ENTRY}
${COORDS}
  let i = row;
  let c = x;
  if (c >= U.dv || i >= s.lq) { return; }
  let base = row_index(bi, hi, i) * U.skv;
  var o = 0.0;
  for (var j = 0u; j < s.lk; j++) { o += scores[base + j] * ld_v(v_index(s, bi, j, hk, c)); }
  o_buf[o_index(s, bi, i, hi, c)] = o;
}
`;

/** P' (after dropout) and dS of every (b, h, i, j): P' at 0, dS at U.src_at of \`pds\`. */
export const GRAD_SCORES_WGSL = `${attentionWgsl(["q", "k", "v", "do"], true)}
${ENTRY}
${COORDS}
  let i = row;
  let j = x;
  if (j >= U.skv) { return; }
  var g = vec2<f32>(0.0, 0.0);
  if (i < s.lq && j < s.lk) {
    var qk = 0.0;
    for (var c = 0u; c < U.d; c++) { qk += ld_q(q_index(s, bi, i, hi, c)) * ld_k(k_index(s, bi, j, hk, c)); }
    var dp = 0.0;
    for (var c = 0u; c < U.dv; c++) { dp += ld_do(do_index(s, bi, i, hi, c)) * ld_v(v_index(s, bi, j, hk, c)); }
    let r = row_index(bi, hi, i);
    g = grad_of_score(bi, hi, i, j, score(s, bi, hi, i, j, qk), dp, stats[r], stats[U.b * U.h * U.sq + r]);
  }
  let e = row_index(bi, hi, i) * U.skv + j;
  pds[e] = g.x;
  pds[U.src_at + e] = g.y;
}
`;

/** dq[i, c] = scale * sum_j dS[i, j] k[j, c]. */
export const DQ_WGSL = `${attentionWgsl(["k"], false)}
${ENTRY}
${COORDS}
  let i = row;
  let c = x;
  if (c >= U.d || i >= s.lq) { return; }
  let base = U.src_at + row_index(bi, hi, i) * U.skv;
  var g = 0.0;
  for (var j = 0u; j < s.lk; j++) { g += pds[base + j] * ld_k(k_index(s, bi, j, hk, c)); }
  out[dq_index(s, bi, i, hi, c)] = g * U.scale;
}
`;

/**
 * dk[j, c] = scale * sum dS[i, j] q[i, c] and dv[j, c] = sum P'[i, j] dO[i, c], over the rows i of every query
 * head sharing the kv head (z indexes batch entry * kv heads here). dV lands at U.dv_at of \`out\`.
 */
export const DKDV_WGSL = `${attentionWgsl(["q", "do"], false)}
${ENTRY}
  let c = wg.x * ${WG}u + tid;
  let j = wg.y;
  let bi = wg.z / U.hg;
  let hk = wg.z % U.hg;
  let s = seq_of(bi);
  if (j >= s.lk) { return; }
  let group = U.h / U.hg;
  var gk = 0.0;
  var gv = 0.0;
  for (var g = 0u; g < group; g++) {
    let hi = hk * group + g;
    for (var i = 0u; i < s.lq; i++) {
      let e = row_index(bi, hi, i) * U.skv + j;
      if (c < U.d) { gk += pds[U.src_at + e] * ld_q(q_index(s, bi, i, hi, c)); }
      if (c < U.dv) { gv += pds[e] * ld_do(do_index(s, bi, i, hi, c)); }
    }
  }
  if (c < U.d) { out[dk_index(s, bi, j, hk, c)] = gk * U.scale; }
  if (c < U.dv) { out[U.dv_at + dv_index(s, bi, j, hk, c)] = gv; }
}
`;
