/**
 * Flash-attention backward in WGSL, register-tiled like the forward (tile-wgsl.ts), deterministic without float
 * atomics: P is recomputed from the saved lse and one pass owns each gradient.
 * - dQ: one workgroup per (R queries, head, batch entry); per key tile a lane computes its TM x C/4 entries of
 *   S = Q K^T and dP = dO V^T, dS = P (dP - D) goes through workgroup memory, and the lane accumulates its
 *   TM x d/4 entries of dQ += dS K. With U.bias_grad it also writes dS for dBias.
 * - dK/dV: one workgroup per (R keys, kv head, batch entry) walks the query tiles of every query head sharing
 *   the kv head (GQA/MQA): S^T = K Q^T and dP^T = V dO^T per lane, P^T and dS^T through workgroup memory,
 *   dV += P^T dO and dK += dS^T Q in registers.
 * Both read the row statistics (lse, D = dO . O) of the stats pass.
 */
import { attentionWgsl } from "../wgsl/attention-common.js";
import type { TileProfile } from "./forward-tiles.js";
import { dotTile, rep, TILE_WGSL, tileLoad } from "./tile-wgsl.js";

export interface BackwardTile {
  /** Rows per workgroup (queries for dQ, keys for dK/dV) and columns per step (keys, queries). */
  readonly r: number;
  readonly c: number;
  readonly tm: number;
  readonly why: string;
}

/** Tiles per pass, first fit (head-dim classes and profiles as in forward-tiles.ts). */
export const BACKWARD_TILES = {
  dq: [
    {
      r: 64,
      c: 16,
      tm: 4,
      why: "head dims up to 64 with 48 KiB: four rows per lane, half the reads per FMA of tm 2",
    },
    { r: 32, c: 32, tm: 2, why: "head dims up to 64 with 48 KiB" },
    { r: 32, c: 16, tm: 2, why: "head dims up to 64 with 32 KiB" },
    { r: 16, c: 16, tm: 1, why: "head dims up to 128 with 48 KiB" },
    { r: 8, c: 16, tm: 1, why: "head dims up to 128 with 32 KiB, up to 64 within 16 KiB" },
  ],
  dkdv: [
    {
      r: 64,
      c: 16,
      tm: 4,
      why: "head dims up to 64 with 48 KiB: four rows per lane, half the reads per FMA of tm 2",
    },
    { r: 32, c: 32, tm: 2, why: "head dims up to 64 with 48 KiB" },
    { r: 32, c: 16, tm: 2, why: "head dims up to 64 with 32 KiB" },
    { r: 16, c: 16, tm: 1, why: "head dims up to 128 with 48 KiB" },
    { r: 8, c: 16, tm: 1, why: "head dims up to 128 with 32 KiB, up to 64 within 16 KiB" },
  ],
} as const satisfies Record<string, readonly BackwardTile[]>;

export type BackwardPass = keyof typeof BACKWARD_TILES;

/** Workgroup bytes of a tile of either pass for head-dim classes dc and dvc (q, k, v, dO tiles, P and dS). */
export function backwardBytes(t: BackwardTile, dc: number, dvc: number): number {
  const tiles = (t.r + t.c) * (dc + dvc);
  return 4 * (tiles + 2 * t.r * t.c);
}

/** The first tile of the pass that fits, or null (the scalar kernels of backward-wgsl.ts then run). */
export function chooseBackwardTile(
  pass: BackwardPass,
  dc: number,
  dvc: number,
  limitBytes: number,
  profile: TileProfile,
): BackwardTile | null {
  const fits = (t: BackwardTile) => backwardBytes(t, dc, dvc) <= limitBytes;
  return BACKWARD_TILES[pass].find((t) => (profile === "throughput" || t.tm === 1) && fits(t)) ?? null;
}

export const backwardThreads = (t: BackwardTile): number => (4 * t.r) / t.tm;

/** Row statistics of query i from the stats pass (zeros past the sequence, whose scores are all masked). */
export const ROW_STATS_WGSL = `
fn lse_of(bi: u32, hi: u32, i: u32, s: Seq) -> f32 { return select(0.0, stats[row_index(bi, hi, i)], i < s.lq); }
fn dd_of(bi: u32, hi: u32, i: u32, s: Seq) -> f32 { return select(0.0, stats[U.b * U.h * U.sq + row_index(bi, hi, i)], i < s.lq); }
`;

function header(dc: number, dvc: number, t: BackwardTile): string {
  return `${attentionWgsl(["q", "k", "v", "do"], true)}
const R = ${t.r}u;
const C = ${t.c}u;
const TM = ${t.tm}u;
const NT = ${backwardThreads(t)}u;
const DC = ${dc}u;
const DVC = ${dvc}u;
const DQ4 = ${dc / 4}u;
const DV4 = ${dvc / 4}u;
const RW = ${t.c / 4}u;
${TILE_WGSL}${ROW_STATS_WGSL}`;
}

/** Loads rows [first, first + n) of tensor `name` (q, k, v or do) into a row- or column-side array. */
function loadTile(
  name: "q" | "k" | "v" | "do",
  side: "rowa" | "cola",
  n: number,
  first: string,
  head: string,
  dims: { dc: number; dvc: number; threads: number; unrolled: boolean; batch: number },
): string {
  const isV = name === "v" || name === "do";
  return tileLoad({
    name,
    array: `${name}_t`,
    side,
    n,
    cls: isV ? dims.dvc : dims.dc,
    threads: dims.threads,
    chunk: dims.unrolled ? dims.batch : 1,
    first,
    limit: name === "q" || name === "do" ? "s.lq" : "s.lk",
    dim: isV ? "U.dv" : "U.d",
    index: (row, col) => `${name}_index(s, bi, ${row}, ${head}, ${col})`,
    strides: [`U.${name}_ss`, `U.${name}_sd`],
  });
}

/**
 * The (P', dS) pairs of a lane's scores into the p_t and ds_t tiles, from raw q.k in x{i}_{g} and dO.v in
 * dp{i}_{g}. Plain tiles without dropout: exp and one multiply per score, from registers. Otherwise the raw
 * values go to the lane's own slots of p_t and ds_t and one loop applies score() and grad_of_score() to them
 * (a single inlined copy of the mask, bias and dropout code: unrolling it per element costs SwiftShader
 * seconds of compilation per pipeline; the loop reads the row statistics from global memory). `stat(i, g)`:
 * vec4s of the lse and D of word (i, g); `pair`: the (query, key) of tile row r, column col; `bias`: also write
 * dS for dBias.
 */
function gradients(
  tm: number,
  kg: number,
  stat: (i: number, g: number) => [string, string],
  pair: { qi: string; kj: string },
  bias: boolean,
): string {
  const each = (f: (i: number, g: number) => string) => rep(tm, (i) => rep(kg, (g) => f(i, g)));
  const store = (a: string, v: string) =>
    each((i, g) => rep(4, (n) => `${a}_t[pa(row0 + ${i}u, ${g * 4 + n}u)][tx] = ${v}${i}_${g}[${n}];`));
  return `if (tile_plain(s, qi_first, qi_last, kj_first, kj_last) && U.dropout_on == 0u) {
      ${each((i, g) => {
        const [lse, dd] = stat(i, g);
        return `let p${i}_${g} = exp(x${i}_${g} * U.scale - ${lse});
      let ds${i}_${g} = p${i}_${g} * (dp${i}_${g} - ${dd});`;
      })}
      ${store("p", "p")}
      ${store("ds", "ds")}
    } else {
      ${store("p", "x")}
      ${store("ds", "dp")}
      for (var e = 0u; e < TM * RW; e++) {
        let r = row0 + e / RW;
        let col = (e % RW) * 4u + tx;
        let a = pa(r, e % RW);
        let qi = ${pair.qi};
        let kj = ${pair.kj};
        let gg = grad_of_score(bi, hi, qi, kj, score(s, bi, hi, qi, kj, p_t[a][tx]), ds_t[a][tx], lse_of(bi, hi, qi, s), dd_of(bi, hi, qi, s));
        p_t[a][tx] = gg.x;
        ds_t[a][tx] = gg.y;
        ${bias ? "if (U.bias_grad != 0u && qi < s.lq && kj < s.lk) { out[U.dbias_at + row_index(bi, hi, qi) * U.skv + kj] = gg.y; }" : ""}
      }
    }`;
}

/** dQ into `out`; with U.bias_grad also dS of every (b, h, i, j) at U.dbias_at. */
export function flashDqTiledWgsl(
  dc: number,
  dvc: number,
  t: BackwardTile,
  unrolled: boolean,
  classLoops = false,
  batch = 16,
): string {
  const words = classLoops ? ["DQ4", "DV4"] : ["dq4", "dv4"];
  const dims = { dc, dvc, threads: backwardThreads(t), unrolled, batch };
  const { tm } = t;
  const kg = t.c / 16;
  const rows = (f: (i: number) => string) => rep(tm, f);
  const each = (f: (i: number, g: number) => string) => rep(tm, (i) => rep(kg, (g) => f(i, g)));
  const md = dc / 16;
  return `${header(dc, dvc, t)}
var<workgroup> q_t: array<vec4<f32>, ${(t.r * dc) / 4}>;
var<workgroup> do_t: array<vec4<f32>, ${(t.r * dvc) / 4}>;
var<workgroup> k_t: array<vec4<f32>, ${(t.c * dc) / 4}>;
var<workgroup> v_t: array<vec4<f32>, ${(t.c * dvc) / 4}>;
var<workgroup> p_t: array<vec4<f32>, ${(t.r * t.c) / 4}>;
var<workgroup> ds_t: array<vec4<f32>, ${(t.r * t.c) / 4}>;

@compute @workgroup_size(${backwardThreads(t)})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let bi = wg.z;
  let hi = wg.y;
  let i0 = (nwg.x - 1u - wg.x) * R;
  let s = seq_of(bi);
  if (i0 >= s.lq) { return; }
  let hk = hi / (U.h / U.hg);
  let tx = tid % 4u;
  let row0 = (tid / 4u) * TM;
  ${loadTile("q", "rowa", t.r, "i0", "hi", dims)}
  ${loadTile("do", "rowa", t.r, "i0", "hi", dims)}
  ${rows(
    (i) => `let lse${i} = lse_of(bi, hi, i0 + row0 + ${i}u, s);
  let dd${i} = dd_of(bi, hi, i0 + row0 + ${i}u, s);
  ${rep(md, (m) => `var dq${i}_${m} = vec4<f32>(0.0);`)}`,
  )}
  let dq4 = (U.d + 3u) / 4u;
  let dv4 = (U.dv + 3u) / 4u;
  let qi_first = i0;
  let qi_last = i0 + R - 1u;
  let keys = key_range(s, i0, min(i0 + R, s.lq) - 1u);
  for (var j0 = (keys.x / C) * C; j0 < keys.y; j0 += C) {
    workgroupBarrier();
    ${loadTile("k", "cola", t.c, "j0", "hk", dims)}
    ${loadTile("v", "cola", t.c, "j0", "hk", dims)}
    workgroupBarrier();
    ${each((i, g) => `var x${i}_${g} = vec4<f32>(0.0);\n    var dp${i}_${g} = vec4<f32>(0.0);`)}
    ${dotTile({ acc: "x", rows: "q", cols: "k", words: words[0], stride: "DQ4", tm, kg })}
    ${dotTile({ acc: "dp", rows: "do", cols: "v", words: words[1], stride: "DV4", tm, kg })}
    let kj_first = j0;
    let kj_last = j0 + C - 1u;
    ${gradients(tm, kg, (i) => [`vec4<f32>(lse${i})`, `vec4<f32>(dd${i})`], { qi: "i0 + r", kj: "j0 + col" }, true)}
    workgroupBarrier();
    for (var j4 = 0u; j4 < RW; j4++) {
      ${rows((i) => `let dsv${i} = ds_t[pa(row0 + ${i}u, j4)];`)}
      ${rep(
        4,
        (u) => `${rep(md, (m) => `let kv${u}_${m} = k_t[cola(j4 * 4u + ${u}u, tx + ${4 * m}u, DQ4)];`)}
      ${rows((i) => rep(md, (m) => `dq${i}_${m} += dsv${i}[${u}] * kv${u}_${m};`))}`,
      )}
    }
  }
  ${rows(
    (i) => `if (i0 + row0 + ${i}u < s.lq) {
    let i = i0 + row0 + ${i}u;
    ${rep(
      md,
      (m) => `{
      let c = (tx + ${4 * m}u) * 4u;
      let v = dq${i}_${m} * U.scale;
      ${rep(4, (n) => `if (c + ${n}u < U.d) { out[dq_index(s, bi, i, hi, c + ${n}u)] = v[${n}]; }`)}
    }`,
    )}
  }`,
  )}
}
`;
}

/** dK and dV into `out` (dK first, dV at U.dv_at). */
export function flashDkDvTiledWgsl(
  dc: number,
  dvc: number,
  t: BackwardTile,
  unrolled: boolean,
  classLoops = false,
  batch = 16,
): string {
  const words = classLoops ? ["DQ4", "DV4"] : ["dq4", "dv4"];
  const dims = { dc, dvc, threads: backwardThreads(t), unrolled, batch };
  const { tm } = t;
  const kg = t.c / 16;
  const rows = (f: (i: number) => string) => rep(tm, f);
  const each = (f: (i: number, g: number) => string) => rep(tm, (i) => rep(kg, (g) => f(i, g)));
  const md = dc / 16;
  const mv = dvc / 16;
  const colStat = (f: string, g: number) =>
    `vec4<f32>(${rep(4, (n) => `${f}(bi, hi, i0 + ${g * 16 + n * 4}u + tx, s)`, ", ")})`;
  return `${header(dc, dvc, t)}
var<workgroup> k_t: array<vec4<f32>, ${(t.r * dc) / 4}>;
var<workgroup> v_t: array<vec4<f32>, ${(t.r * dvc) / 4}>;
var<workgroup> q_t: array<vec4<f32>, ${(t.c * dc) / 4}>;
var<workgroup> do_t: array<vec4<f32>, ${(t.c * dvc) / 4}>;
var<workgroup> p_t: array<vec4<f32>, ${(t.r * t.c) / 4}>;
var<workgroup> ds_t: array<vec4<f32>, ${(t.r * t.c) / 4}>;

@compute @workgroup_size(${backwardThreads(t)})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let bi = wg.z;
  let hk = wg.y;
  let j0 = wg.x * R;
  let s = seq_of(bi);
  if (j0 >= s.lk) { return; }
  let tx = tid % 4u;
  let row0 = (tid / 4u) * TM;
  ${loadTile("k", "rowa", t.r, "j0", "hk", dims)}
  ${loadTile("v", "rowa", t.r, "j0", "hk", dims)}
  ${rows((i) => `${rep(md, (m) => `var dk${i}_${m} = vec4<f32>(0.0);`)}\n  ${rep(mv, (m) => `var dv${i}_${m} = vec4<f32>(0.0);`)}`)}
  let dq4 = (U.d + 3u) / 4u;
  let dv4 = (U.dv + 3u) / 4u;
  let kj_first = j0;
  let kj_last = j0 + R - 1u;
  let group = U.h / U.hg;
  let queries = query_range(s, j0, min(j0 + R, s.lk) - 1u);
  for (var gi = 0u; gi < group; gi++) {
    let hi = hk * group + gi;
    for (var i0 = (queries.x / C) * C; i0 < queries.y; i0 += C) {
      workgroupBarrier();
      ${loadTile("q", "cola", t.c, "i0", "hi", dims)}
      ${loadTile("do", "cola", t.c, "i0", "hi", dims)}
      workgroupBarrier();
      ${each((i, g) => `var x${i}_${g} = vec4<f32>(0.0);\n      var dp${i}_${g} = vec4<f32>(0.0);`)}
      ${dotTile({ acc: "x", rows: "k", cols: "q", words: words[0], stride: "DQ4", tm, kg })}
      ${dotTile({ acc: "dp", rows: "v", cols: "do", words: words[1], stride: "DV4", tm, kg })}
      let qi_first = i0;
      let qi_last = i0 + C - 1u;
      ${rep(kg, (g) => `let lse4_${g} = ${colStat("lse_of", g)};\n      let dd4_${g} = ${colStat("dd_of", g)};`)}
      ${gradients(tm, kg, (_i, g) => [`lse4_${g}`, `dd4_${g}`], { qi: "i0 + col", kj: "j0 + r" }, false)}
      workgroupBarrier();
      for (var j4 = 0u; j4 < RW; j4++) {
        ${rows((i) => `let pv${i} = p_t[pa(row0 + ${i}u, j4)];\n        let dsv${i} = ds_t[pa(row0 + ${i}u, j4)];`)}
        ${rep(
          4,
          (u) => `${rep(mv, (m) => `let dov${u}_${m} = do_t[cola(j4 * 4u + ${u}u, tx + ${4 * m}u, DV4)];`)}
        ${rep(md, (m) => `let qv${u}_${m} = q_t[cola(j4 * 4u + ${u}u, tx + ${4 * m}u, DQ4)];`)}
        ${rows((i) => `${rep(mv, (m) => `dv${i}_${m} += pv${i}[${u}] * dov${u}_${m};`)}\n        ${rep(md, (m) => `dk${i}_${m} += dsv${i}[${u}] * qv${u}_${m};`)}`)}`,
        )}
      }
    }
  }
  ${rows(
    (i) => `if (j0 + row0 + ${i}u < s.lk) {
    let j = j0 + row0 + ${i}u;
    ${rep(
      md,
      (m) => `{
      let c = (tx + ${4 * m}u) * 4u;
      let v = dk${i}_${m} * U.scale;
      ${rep(4, (n) => `if (c + ${n}u < U.d) { out[dk_index(s, bi, j, hk, c + ${n}u)] = v[${n}]; }`)}
    }`,
    )}
    ${rep(
      mv,
      (m) => `{
      let c = (tx + ${4 * m}u) * 4u;
      let v = dv${i}_${m};
      ${rep(4, (n) => `if (c + ${n}u < U.dv) { out[U.dv_at + dv_index(s, bi, j, hk, c + ${n}u)] = v[${n}]; }`)}
    }`,
    )}
  }`,
  )}
}
`;
}
