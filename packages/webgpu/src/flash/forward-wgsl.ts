/**
 * Flash-attention forward in WGSL, register-tiled. One workgroup per (BQ query rows, head, batch entry); its
 * lanes form groups of four, each group owning TM consecutive rows (forward-tiles.ts). Per key tile of BK keys:
 * - S = Q K^T: a lane computes TM x BK/4 scores (keys 4 tx .. 4 tx + 3 of every 16) as vec4 multiply-adds from
 *   vec4 reads of Q (four dims of a row) and of K stored transposed (four keys of a dim) in workgroup memory;
 * - online softmax in registers: the row max over the group's four lanes (subgroup shuffles where the device has
 *   subgroups, else a small workgroup array), the normaliser l kept per lane and summed at the end;
 * - P goes to workgroup memory, and a lane accumulates its TM x dv/4 outputs (vec4 columns tx, tx + 4, ...) of
 *   O += P V, rescaled by exp(m_old - m_new) when a row's max grows.
 * Tiles wholly inside the mask's band without bias or arbitrary mask skip the per-element score() tests.
 * Workgroup arrays are XOR-swizzled by row group (Q, P) or dim (K) so that the lanes of a group and the groups
 * of a subgroup read different memory banks. Key tiles outside the causal/window band are skipped; the query
 * blocks with the most keys (the last ones, under a causal mask) start first. Writes o (f32) and lse.
 */
import { attentionWgsl } from "../wgsl/attention-common.js";
import type { ForwardTile } from "./forward-tiles.js";
import { rep, TILE_WGSL, type TileLoadOptions, tileLoad, tilePrefetch } from "./tile-wgsl.js";

/** Threads of a workgroup running tile `t`. */
export const forwardThreads = (t: ForwardTile): number => (4 * t.bq) / t.tm;

/**
 * dc, dvc: head-dim classes (multiples of 32); `subgroups`: reduce rows with subgroup shuffles; `unrolled`:
 * output columns in named registers rather than an array (see `cols`); `classLoops`: the score loop runs to the
 * head-dim class, `prefetch`: the next K/V tile is loaded into registers during the current one (switches.ts;
 * tiles with their own V array); `loadBatch`: loads in flight per lane in the unrolled tile loads.
 */
export function flashForwardWgsl(
  dc: number,
  dvc: number,
  t: ForwardTile,
  subgroups: boolean,
  unrolled: boolean,
  classLoops = false,
  prefetch = false,
  loadBatch = 16,
): string {
  const { bq, bk, tm } = t;
  const kg = bk / 16;
  const mv = dvc / 16;
  const nt = forwardThreads(t);
  const kvWords = t.sharedKv ? (bk * Math.max(dc, dvc)) / 4 : (bk * dc) / 4;
  const rows = (f: (i: number) => string): string => rep(tm, f);
  // The lane's score words: row i, key group g holds keys 16 g + 4 tx .. 16 g + 4 tx + 3.
  const laneWords = (f: (i: number, g: number) => string): string => rep(tm, (i) => rep(kg, (g) => f(i, g)));
  const keyGroups = (f: (g: number) => string, sep = "\n"): string => rep(kg, f, sep);
  // The output columns of a lane: unrolled into named registers (throughput), or a loop over an array (compile
  // profile: a quarter of the code for SwiftShader to compile; GPUs get the unrolled form).
  const cols = (f: (m: string) => string): string =>
    unrolled ? rep(mv, (m) => f(`${m}u`)) : `for (var m = 0u; m < ${mv}u; m++) {\n      ${f("m")}\n    }`;
  const o = (i: number, m: string) => (unrolled ? `o${i}_${m}` : `o${i}[${m}]`);
  const v = (u: number, m: string) => (unrolled ? `v${u}_${m}` : `v${u}`);
  // Max (or sum) of a per-row value over the four lanes of a row group.
  const across = (v: string, op: "max" | "sum"): string => {
    if (!subgroups) return "";
    const f = (x: string, y: string) => (op === "max" ? `max(${x}, ${y})` : `${x} + ${y}`);
    return `${v} = ${f(v, `subgroupShuffleXor(${v}, 1u)`)};\n    ${v} = ${f(v, `subgroupShuffleXor(${v}, 2u)`)};`;
  };
  const acrossSlow = (v: (i: number) => string, op: "max" | "sum"): string => {
    if (subgroups) return "";
    const f = (x: string, y: string) => (op === "max" ? `max(${x}, ${y})` : `(${x} + ${y})`);
    const at = (i: number, l: number) => `red_t[(row0 + ${i}u) * 4u + ${l}u]`;
    return `workgroupBarrier();
    ${rows((i) => `red_t[(row0 + ${i}u) * 4u + tx] = ${v(i)};`)}
    workgroupBarrier();
    ${rows((i) => `${v(i)} = ${f(f(at(i, 0), at(i, 1)), f(at(i, 2), at(i, 3)))};`)}`;
  };
  const chunk = unrolled ? loadBatch : 1;
  const loadOptions = (name: "q" | "k" | "v", n: number, first: string): TileLoadOptions => {
    const [cls, dim, limit, head] =
      name === "v"
        ? [dvc, "U.dv", "s.lk", "hk"]
        : [dc, "U.d", name === "q" ? "s.lq" : "s.lk", name === "q" ? "hi" : "hk"];
    return {
      name,
      array: name === "q" ? "q_t" : name === "k" || t.sharedKv ? "k_t" : "v_t",
      side: name === "q" ? "rowa" : name === "k" ? "cola" : "flat",
      n,
      cls,
      threads: nt,
      chunk,
      first,
      limit,
      dim,
      index: (row, col) => `${name}_index(s, bi, ${row}, ${head}, ${col})`,
      strides: [`U.${name}_ss`, `U.${name}_sd`],
      ...(name === "k"
        ? { target: (r: string, c: string) => `k_t[kta(${c}, (${r}) / 4u)][(${r}) % 4u]` }
        : {}),
    };
  };
  const load = (name: "q" | "k" | "v", n: number, first: string) => tileLoad(loadOptions(name, n, first));
  const pipelined = prefetch && !t.sharedKv;
  const pre = pipelined ? (["k", "v"] as const).map((name) => tilePrefetch(loadOptions(name, bk, "j0"))) : [];
  const loadV = load("v", bk, "j0");
  return `${attentionWgsl(["q", "k", "v", "sink"], true)}
const BQ = ${bq}u;
const BK = ${bk}u;
const TM = ${tm}u;
const NT = ${nt}u;
const DC = ${dc}u;
const DVC = ${dvc}u;
const DQ4 = ${dc / 4}u;
const DV4 = ${dvc / 4}u;
const RW = ${bk / 4}u;

var<workgroup> q_t: array<vec4<f32>, ${(bq * dc) / 4}>;
var<workgroup> k_t: array<vec4<f32>, ${kvWords}>;
${t.sharedKv ? "" : `var<workgroup> v_t: array<vec4<f32>, ${(bk * dvc) / 4}>;`}
var<workgroup> p_t: array<vec4<f32>, ${(bq * bk) / 4}>;
${subgroups ? "" : `var<workgroup> red_t: array<f32, ${4 * bq}>;`}
${TILE_WGSL}
// K is stored transposed, vec4 word j4 of dim c holding keys 4 j4 .. 4 j4 + 3, swizzled by c against the
// stores of the load (consecutive lanes store consecutive dims of one key).
fn kta(c: u32, j4: u32) -> u32 { return c * RW + (j4 ^ (c & (RW - 1u))); }
@compute @workgroup_size(${nt})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let bi = wg.z;
  let hi = wg.y;
  let i0 = (nwg.x - 1u - wg.x) * BQ;
  let s = seq_of(bi);
  let hk = hi / (U.h / U.hg);
  if (i0 >= s.lq) {
    for (var r = tid; r < BQ; r += NT) {
      if (i0 + r < U.sq) { lse_buf[row_index(bi, hi, i0 + r)] = neg_inf(); }
    }
    return;
  }
  let tx = tid % 4u;
  let row0 = (tid / 4u) * TM;
  ${load("q", bq, "i0")}

  let sink = sink_of(hi);
  let l_init = select(0.0, 1.0, U.softmax != 0u && tx == 0u);
  ${rows((i) => `var m${i} = sink;\n  var l${i} = l_init;`)}
  ${rows((i) => (unrolled ? cols((m) => `var ${o(i, m)} = vec4<f32>(0.0);`) : `var o${i}: array<vec4<f32>, ${mv}>;`))}
  let dq4 = (U.d + 3u) / 4u;
  let keys = key_range(s, i0, min(i0 + BQ, s.lq) - 1u);
  ${pipelined ? `${pre.map((x) => x.regs).join("\n  ")}\n  ${pre.map((x) => x.fetch("(keys.x / BK) * BK")).join("\n  ")}` : ""}
  for (var j0 = (keys.x / BK) * BK; j0 < keys.y; j0 += BK) {
    workgroupBarrier();
    ${pipelined ? pre.map((x) => x.store).join("\n    ") : `${load("k", bk, "j0")}\n    ${t.sharedKv ? "" : loadV}`}
    workgroupBarrier();
    ${pipelined ? pre.map((x) => x.fetch("j0 + BK")).join("\n    ") : ""}
    ${rows((i) => keyGroups((g) => `var s${i}_${g} = vec4<f32>(0.0);`))}
    for (var c4 = 0u; c4 < ${classLoops ? "DQ4" : "dq4"}; c4++) {
      ${rows((i) => `let q${i} = q_t[rowa(row0 + ${i}u, c4, DQ4)];`)}
      ${rep(
        4,
        (cc) => `${keyGroups((g) => `let k${cc}_${g} = k_t[kta(c4 * 4u + ${cc}u, ${g * 4}u + tx)];`)}
      ${rows((i) => keyGroups((g) => `s${i}_${g} = fma(vec4<f32>(q${i}[${cc}]), k${cc}_${g}, s${i}_${g});`))}`,
      )}
    }
    if (tile_plain(s, i0, i0 + BQ - 1u, j0, j0 + BK - 1u)) {
      ${rows((i) => keyGroups((g) => `s${i}_${g} *= U.scale;`))}
    } else {
      // Through the lane's own P slots, so that one loop holds the only inlined copy of score() (unrolled per
      // element it costs SwiftShader seconds of compilation).
      ${laneWords((i, g) => `p_t[pa(row0 + ${i}u, ${g * 4}u + tx)] = s${i}_${g};`)}
      for (var e = 0u; e < TM * ${4 * kg}u; e++) {
        let r = row0 + e / ${4 * kg}u;
        let w = ((e / 4u) % ${kg}u) * 4u + tx;
        let a = pa(r, w);
        p_t[a][e % 4u] = score(s, bi, hi, i0 + r, j0 + w * 4u + e % 4u, p_t[a][e % 4u]);
      }
      ${laneWords((i, g) => `s${i}_${g} = p_t[pa(row0 + ${i}u, ${g * 4}u + tx)];`)}
    }
    ${rows(
      (i) => `var mx${i} = ${keyGroups(
        (g) => `max(max(s${i}_${g}.x, s${i}_${g}.y), max(s${i}_${g}.z, s${i}_${g}.w))`,
      )
        .split("\n")
        .reduce((a, b) => `max(${a}, ${b})`)};
    ${across(`mx${i}`, "max")}`,
    )}
    ${acrossSlow((i) => `mx${i}`, "max")}
    ${rows(
      (i) => `let m_new${i} = max(m${i}, mx${i});
    // m_old == m_new gives 1; a row masked so far (m_old == MASKED < m_new) gives exp(-huge) = 0.
    let alpha${i} = exp(m${i} - m_new${i});
    m${i} = m_new${i};
    ${keyGroups((g) => `var p${i}_${g} = select(exp(s${i}_${g} - vec4<f32>(m_new${i})), vec4<f32>(0.0), s${i}_${g} < vec4<f32>(-1.0e38));`)}
    l${i} = l${i} * alpha${i}${keyGroups((g) => ` + dot(p${i}_${g}, vec4<f32>(1.0))`, "")};
    ${cols((m) => `${o(i, m)} *= alpha${i};`)}`,
    )}
    ${t.sharedKv ? `workgroupBarrier();\n    ${loadV}` : ""}
    ${laneWords((i, g) => `p_t[pa(row0 + ${i}u, ${g * 4}u + tx)] = p${i}_${g};`)}
    if (U.dropout_on != 0u) {
      for (var e = 0u; e < TM * ${4 * kg}u; e++) {
        let r = row0 + e / ${4 * kg}u;
        let w = ((e / 4u) % ${kg}u) * 4u + tx;
        let a = pa(r, w);
        var p = 0.0;
        if (dropout_keep(bi, hi, i0 + r, j0 + w * 4u + e % 4u)) { p = p_t[a][e % 4u] * U.dropout_scale; }
        p_t[a][e % 4u] = p;
      }
    }
    workgroupBarrier();
    for (var j4 = 0u; j4 < BK / 4u; j4++) {
      ${rows((i) => `let pp${i} = p_t[pa(row0 + ${i}u, j4)];`)}
      ${rep(4, (u) =>
        cols(
          (m) => `let ${v(u, m)} = ${t.sharedKv ? "k_t" : "v_t"}[(j4 * 4u + ${u}u) * DV4 + tx + 4u * ${m}];
      ${rows((i) => `${o(i, m)} += pp${i}[${u}] * ${v(u, m)};`)}`,
        ),
      )}
    }
  }
  ${rows((i) => across(`l${i}`, "sum"))}
  ${acrossSlow((i) => `l${i}`, "sum")}
  ${rows(
    (i) => `{
    let i = i0 + row0 + ${i}u;
    if (i < s.lq) {
      var inv = 0.0;
      if (l${i} > 0.0) { inv = 1.0 / l${i}; }
      ${cols(
        (m) => `{
        let c = (tx + 4u * ${m}) * 4u;
        let o = ${o(i, m)} * inv;
        if (c < U.dv) { o_buf[o_index(s, bi, i, hi, c)] = o.x; }
        if (c + 1u < U.dv) { o_buf[o_index(s, bi, i, hi, c + 1u)] = o.y; }
        if (c + 2u < U.dv) { o_buf[o_index(s, bi, i, hi, c + 2u)] = o.z; }
        if (c + 3u < U.dv) { o_buf[o_index(s, bi, i, hi, c + 3u)] = o.w; }
      }`,
      )}
    }
    if (tx == 0u && i < U.sq) {
      var lse = neg_inf();
      if (i < s.lq && l${i} > 0.0) { lse = m${i} + log(l${i}); }
      lse_buf[row_index(bi, hi, i)] = lse;
    }
  }`,
  )}
}
`;
}
