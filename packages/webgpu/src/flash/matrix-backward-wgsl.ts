/**
 * Flash-attention backward on subgroup matrices (tiles: matrix-backward-tiles.ts), the same two passes as the
 * register-tiled backward (backward-tiled-wgsl.ts), deterministic without atomics, reading the stats pass's
 * lse and D = dO . O:
 * - dQ: subgroup `sub` owns 16 queries; their Q and dO fragments stay in registers. Per key tile S = Q K^T
 *   and dP = dO V^T on the matrices go to workgroup memory, two lanes per row make dS = P (dP - D) (f16,
 *   through score() and grad_of_score() where the tile is not plain; also written out for dBias), and
 *   dQ += dS K on the matrices.
 * - dK/dV: subgroup `sub` owns 16 keys of a kv head, their K and V fragments in registers; it walks the query
 *   tiles of every query head sharing the kv head (GQA/MQA): S^T = K Q^T and dP^T = V dO^T, then P^T and dS^T
 *   (f16) from the lanes, dV += P^T dO and dK += dS^T Q.
 * Gradients are accumulated in f32 and staged through workgroup memory to `out` (dK and dQ scaled there).
 * Fragment types, zeroing and uniformity: matrix-fragments-wgsl.ts.
 */
import { attentionWgsl } from "../wgsl/attention-common.js";
import { ROW_STATS_WGSL } from "./backward-tiled-wgsl.js";
import {
  type MatrixBackwardTile,
  matrixBackwardLayout,
  matrixBackwardThreads,
} from "./matrix-backward-tiles.js";
import { RESULT as ACC, LEFT as L, RIGHT as R, stagedLeft, stagedStore } from "./matrix-fragments-wgsl.js";
import { rep, TILE_WGSL, type TileLoadOptions, tileLoad, tileWordPrefetch } from "./tile-wgsl.js";

type Tensor = "q" | "k" | "v" | "do";

interface Shape {
  dc: number;
  dvc: number;
  threads: number;
  cols: number;
  loadBatch: number;
  /** Row strides: matrixBackwardLayout. */
  stride: { d: number; dv: number; ops: number };
  /** Column tiles read as words of two f16 (tileWordPrefetch; the call's layout allows it). */
  words: boolean;
}

/** `loadBatch`: loads in flight per lane in the column tiles; `words`: they are read as words (Shape). */
export interface PassOptions {
  loadBatch?: number;
  words?: boolean;
}

function shapeOf(dc: number, dvc: number, t: MatrixBackwardTile, o: PassOptions): Shape {
  const threads = matrixBackwardThreads(t);
  const stride = matrixBackwardLayout(t, dc, dvc);
  return { dc, dvc, threads, cols: t.cols, loadBatch: o.loadBatch ?? 16, stride, words: o.words === true };
}

/** Columns [first, first + cols) of `name` into the f16 array `array`, row-major with the class's stride. */
function columnTile(name: Tensor, array: string, head: string, first: string, sh: Shape): string {
  const isV = name === "v" || name === "do";
  const cls = isV ? sh.dvc : sh.dc;
  const stride = isV ? sh.stride.dv : sh.stride.d;
  const opts: TileLoadOptions = {
    name,
    array,
    side: "flat",
    n: sh.cols,
    cls,
    threads: sh.threads,
    chunk: sh.loadBatch,
    first,
    limit: name === "q" || name === "do" ? "s.lq" : "s.lk",
    dim: isV ? "U.dv" : "U.d",
    index: (row, col) => `${name}_index(s, bi, ${row}, ${head}, ${col})`,
    strides: [`U.${name}_ss`, `U.${name}_sd`],
    target: (r, c) => `${array}[(${r}) * ${stride}u + ${c}]`,
    convert: (x) => `f16(${x})`,
  };
  if (!sh.words) return tileLoad(opts);
  // Loaded into registers and stored at once: half the loads of single elements, no per-element decoding.
  const pairs = tileWordPrefetch(opts);
  return `{
      ${pairs.regs}
      ${pairs.fetch(first)}
      ${pairs.store}
    }`;
}

/** The register fragments `${prefix}0..` of the 16 rows of each subgroup, staged through sP. */
function rowFragments(prefix: string, name: Tensor, head: string, first: string, rows: number, sh: Shape) {
  const isV = name === "v" || name === "do";
  const count = (isV ? sh.dvc : sh.dc) / 16;
  return rep(
    count,
    (k) =>
      stagedLeft({
        name: `${prefix}${k}`,
        scratch: "sP",
        stride: sh.stride.ops,
        rows,
        threads: sh.threads,
        first,
        col0: k * 16,
        limit: name === "q" || name === "do" ? "s.lq" : "s.lk",
        dim: isV ? "U.dv" : "U.d",
        load: (row, col) => `ld_${name}(${name}_index(s, bi, ${row}, ${head}, ${col}))`,
      }),
    "\n  ",
  );
}

/**
 * acc{b} = sum over k of frag{k} x (block b of `array`, rows `stride` apart)^T for each 16-column block b of the
 * step, stored to the subgroup's part of `scratch` (f32, stride cols).
 */
function productsToScratch(
  acc: string,
  frag: string,
  array: string,
  cls: number,
  stride: number,
  scratch: string,
  cols: number,
) {
  const blocks = cols / 16;
  const ks = cls / 16;
  return `${rep(blocks, (b) => `var ${acc}${b} = ${ACC}();`, "\n    ")}
    ${rep(
      blocks * ks,
      (x) => {
        const b = Math.floor(x / ks);
        const k = x % ks;
        return `${acc}${b} = subgroupMatrixMultiplyAccumulate(${frag}${k}, subgroupMatrixLoad<${R}, col_major>(&${array}, ${b * 16 * stride + k * 16}u, ${stride}u), ${acc}${b});`;
      },
      "\n    ",
    )}
    ${rep(blocks, (b) => `subgroupMatrixStore<row_major>(&${scratch}, sub * ${16 * cols}u + ${b * 16}u, ${acc}${b}, ${cols}u);`, "\n    ")}`;
}

/**
 * acc{n} += (block b of the subgroup's f16 `rowsArray`, rows `ops` apart) x (rows of block b of `array`, rows
 * `stride` apart, columns n), over b, n.
 */
function accumulate(acc: string, rowsArray: string, array: string, cls: number, stride: number, sh: Shape) {
  const { cols, ops } = { cols: sh.cols, ops: sh.stride.ops };
  return rep(
    cols / 16,
    (b) => `{
      let lhs = subgroupMatrixLoad<${L}, row_major>(&${rowsArray}, sub * ${16 * ops}u + ${b * 16}u, ${ops}u);
      ${rep(cls / 16, (n) => `${acc}${n} = subgroupMatrixMultiplyAccumulate(lhs, subgroupMatrixLoad<${R}, row_major>(&${array}, ${b * 16 * stride + n * 16}u, ${stride}u), ${acc}${n});`, "\n      ")}
    }`,
    "\n    ",
  );
}

/** The shared opening: constants, the per-subgroup products (sS, sD: f32) and their f16 results (sP). */
function header(t: MatrixBackwardTile, sh: Shape): string {
  return `${attentionWgsl(["q", "k", "v", "do"], true)}
const TM = 1u;
const RW = ${t.cols / 4}u;
${TILE_WGSL}${ROW_STATS_WGSL}
var<workgroup> sS: array<f32, ${16 * t.sgw * t.cols}>;
var<workgroup> sD: array<f32, ${16 * t.sgw * t.cols}>;
var<workgroup> sP: array<f16, ${16 * t.sgw * sh.stride.ops}>;`;
}

/**
 * A lane's half row of the subgroup's 16 x cols products: lane 2r + h takes row r, columns h * cols/2 ..;
 * `body` sees the column `col` and the element's index `at` in sS and sD, `pt` in the f16 operands.
 */
function halfRow(cols: number, body: string): string {
  return `for (var cc = 0u; cc < ${cols / 2}u; cc++) {
        let col = c0 + cc;
        let at = srow + cc;
        let pt = prow + cc;
        ${body}
      }`;
}

/** dQ into `out`; with U.bias_grad also dS of every (b, h, i, j) at U.dbias_at. */
export function matrixDqWgsl(dc: number, dvc: number, t: MatrixBackwardTile, o: PassOptions = {}): string {
  const sh = shapeOf(dc, dvc, t, o);
  const { threads, stride } = sh;
  const bq = 16 * t.sgw;
  return `${header(t, sh)}
var<workgroup> sK: array<f16, ${t.cols * stride.d}>;
var<workgroup> sV: array<f16, ${t.cols * stride.dv}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let bi = wg.z;
  let hi = wg.y;
  let i0 = (nwg.x - 1u - wg.x) * ${bq}u;
  let s = seq_of(bi);
  if (i0 >= s.lq) { return; }
  let hk = hi / (U.h / U.hg);
  let sub = tid / 32u;
  let q_first = i0 + sub * 16u;
  ${rowFragments("q", "q", "hi", "i0", bq, sh)}
  ${rowFragments("g", "do", "hi", "i0", bq, sh)}
  let i = q_first + lane / 2u;
  let c0 = (lane % 2u) * ${t.cols / 2}u;
  let srow = sub * ${16 * t.cols}u + (lane / 2u) * ${t.cols}u + c0;
  let prow = sub * ${16 * stride.ops}u + (lane / 2u) * ${stride.ops}u + c0;
  let lse = lse_of(bi, hi, i, s);
  let dd = dd_of(bi, hi, i, s);
  ${rep(dc / 16, (n) => `var a${n} = ${ACC}();`, "\n  ")}
  let keys = key_range(s, i0, min(i0 + ${bq}u, s.lq) - 1u);
  for (var j0 = (keys.x / ${t.cols}u) * ${t.cols}u; j0 < keys.y; j0 += ${t.cols}u) {
    workgroupBarrier();
    ${columnTile("k", "sK", "hk", "j0", sh)}
    ${columnTile("v", "sV", "hk", "j0", sh)}
    workgroupBarrier();
    ${productsToScratch("x", "q", "sK", dc, stride.d, "sS", t.cols)}
    ${productsToScratch("y", "g", "sV", dvc, stride.dv, "sD", t.cols)}
    workgroupBarrier();
    if (U.dropout_on == 0u && tile_plain(s, q_first, q_first + 15u, j0, j0 + ${t.cols - 1}u)) {
      ${halfRow(t.cols, "sP[pt] = f16(exp(sS[at] * U.scale - lse) * (sD[at] - dd));")}
    } else {
      ${halfRow(
        t.cols,
        `let j = j0 + col;
        var gg = grad_of_score(bi, hi, i, j, score(s, bi, hi, i, j, sS[at]), sD[at], lse, dd);
        if (i >= s.lq) { gg = vec2<f32>(0.0); }
        sP[pt] = f16(gg.y);
        if (U.bias_grad != 0u && i < s.lq && j < s.lk) { out[U.dbias_at + row_index(bi, hi, i) * U.skv + j] = gg.y; }`,
      )}
    }
    workgroupBarrier();
    ${accumulate("a", "sP", "sK", dc, stride.d, sh)}
  }
  ${rep(
    dc / 16,
    (n) =>
      stagedStore({
        acc: `a${n}`,
        scratch: "sS",
        stride: t.cols,
        first: "q_first",
        col0: n * 16,
        limit: "s.lq",
        dim: "U.d",
        target: (row, col, value) => `out[dq_index(s, bi, ${row}, hi, ${col})] = ${value} * U.scale;`,
      }),
    "\n  ",
  )}
}
`;
}

/** dK and dV into `out` (dK first, dV at U.dv_at). */
export function matrixDkDvWgsl(dc: number, dvc: number, t: MatrixBackwardTile, o: PassOptions = {}): string {
  const sh = shapeOf(dc, dvc, t, o);
  const { threads, stride } = sh;
  const bk = 16 * t.sgw;
  const store = (
    acc: string,
    n: number,
    dim: string,
    target: (row: string, col: string, value: string) => string,
  ) =>
    stagedStore({
      acc: `${acc}${n}`,
      scratch: "sS",
      stride: t.cols,
      first: "k_first",
      col0: n * 16,
      limit: "s.lk",
      dim,
      target,
    });
  return `${header(t, sh)}
var<workgroup> sQ: array<f16, ${t.cols * stride.d}>;
var<workgroup> sG: array<f16, ${t.cols * stride.dv}>;
var<workgroup> sT: array<f16, ${16 * t.sgw * stride.ops}>;
var<workgroup> sL: array<f32, ${2 * t.cols}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let bi = wg.z;
  let hk = wg.y;
  let j0 = wg.x * ${bk}u;
  let s = seq_of(bi);
  if (j0 >= s.lk) { return; }
  let sub = tid / 32u;
  let k_first = j0 + sub * 16u;
  ${rowFragments("k", "k", "hk", "j0", bk, sh)}
  ${rowFragments("v", "v", "hk", "j0", bk, sh)}
  let j = k_first + lane / 2u;
  let c0 = (lane % 2u) * ${t.cols / 2}u;
  let srow = sub * ${16 * t.cols}u + (lane / 2u) * ${t.cols}u + c0;
  let prow = sub * ${16 * stride.ops}u + (lane / 2u) * ${stride.ops}u + c0;
  ${rep(dc / 16, (n) => `var dk${n} = ${ACC}();`, "\n  ")}
  ${rep(dvc / 16, (n) => `var dv${n} = ${ACC}();`, "\n  ")}
  let group = U.h / U.hg;
  let queries = query_range(s, j0, min(j0 + ${bk}u, s.lk) - 1u);
  for (var gi = 0u; gi < group; gi++) {
    let hi = hk * group + gi;
    for (var i0 = (queries.x / ${t.cols}u) * ${t.cols}u; i0 < queries.y; i0 += ${t.cols}u) {
      workgroupBarrier();
      ${columnTile("q", "sQ", "hi", "i0", sh)}
      ${columnTile("do", "sG", "hi", "i0", sh)}
      for (var e = tid; e < ${t.cols}u; e += ${threads}u) {
        sL[e] = lse_of(bi, hi, i0 + e, s);
        sL[${t.cols}u + e] = dd_of(bi, hi, i0 + e, s);
      }
      workgroupBarrier();
      ${productsToScratch("x", "k", "sQ", dc, stride.d, "sS", t.cols)}
      ${productsToScratch("y", "v", "sG", dvc, stride.dv, "sD", t.cols)}
      workgroupBarrier();
      if (U.dropout_on == 0u && tile_plain(s, i0, i0 + ${t.cols - 1}u, k_first, k_first + 15u)) {
        ${halfRow(
          t.cols,
          `let p = exp(sS[at] * U.scale - sL[col]);
        sP[pt] = f16(p);
        sT[pt] = f16(p * (sD[at] - sL[${t.cols}u + col]));`,
        )}
      } else {
        ${halfRow(
          t.cols,
          `let i = i0 + col;
        var gg = grad_of_score(bi, hi, i, j, score(s, bi, hi, i, j, sS[at]), sD[at], sL[col], sL[${t.cols}u + col]);
        if (i >= s.lq) { gg = vec2<f32>(0.0); }
        sP[pt] = f16(gg.x);
        sT[pt] = f16(gg.y);`,
        )}
      }
      workgroupBarrier();
      ${accumulate("dv", "sP", "sG", dvc, stride.dv, sh)}
      ${accumulate("dk", "sT", "sQ", dc, stride.d, sh)}
    }
  }
  ${rep(dc / 16, (n) => store("dk", n, "U.d", (row, col, value) => `out[dk_index(s, bi, ${row}, hk, ${col})] = ${value} * U.scale;`), "\n  ")}
  ${rep(dvc / 16, (n) => store("dv", n, "U.dv", (row, col, value) => `out[U.dv_at + dv_index(s, bi, ${row}, hk, ${col})] = ${value};`), "\n  ")}
}
`;
}
