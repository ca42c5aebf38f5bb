/**
 * Flash-attention forward on subgroup matrices (tiles and eligibility: matrix-tiles.ts). One workgroup per
 * (16 * SGW query rows, head, batch entry); subgroup `sub` owns the 16 rows from i0 + 16 sub, its Q fragments
 * (16 x 16 f16, one per 16 dims) stay in registers. Subgroup matrices have only whole-matrix operations, so O
 * cannot be rescaled per row in registers (only through workgroup memory, which measured slower on the H200).
 * Two ways around it:
 * - "two_pass": two passes over the key tiles of the causal/window band.
 *   1. S = Q K^T on the matrices, stored to workgroup memory; two lanes per row turn the 16 x BKV block into
 *      scores (scale, masks, biases through score(); plain tiles only scale) and keep the row's max;
 *   2. S again; the lanes write P = exp(x - max) (dropout applied) as f16 and sum it (before dropout), and
 *      O += P V on the matrices.
 *   Three products per tile instead of two. Pass 1 finding only the max (not the sum as well, with its exp per
 *   score) took d64 s2048 from 1.7-2.9 to 1.4-1.9 ms on the H200 (pipelined; benchmarks/results/
 *   webgpu-subgroup-matrix-h200, round 4).
 * - "one_pass": one pass, with a row's exponent base m fixed at the max of its first tile with a key in the
 *   band (O's row is still zero then, so nothing needs rescaling). P = exp(x - m) is stored as f16 (max 65504):
 *   a later tile whose max passes m by more than GROWTH would overflow it, so such a workgroup marks itself in
 *   redo_buf and the "redo" program (the two-pass one, which returns at once for unmarked workgroups) computes
 *   it again in the same submission. Scores of ordinary inputs stay within GROWTH of a row's first tile. With the
 *   tile's `prefetch` (both on in the tables) d64 s2048 took 0.83 ms of GPU time against 1.16 two-pass (round 5).
 * Either way P is unnormalized and O is divided by the row's sum on its way out through workgroup memory.
 * Fragment types, zeroing and uniformity: matrix-fragments-wgsl.ts.
 */
import { attentionWgsl } from "../wgsl/attention-common.js";
import { RESULT as ACC, LEFT as L, RIGHT as R, stagedLeft, stagedStore } from "./matrix-fragments-wgsl.js";
import { type MatrixTile, matrixLayout, matrixThreads } from "./matrix-tiles.js";
import {
  rep,
  TILE_WGSL,
  type TileLoadOptions,
  tileLoad,
  tilePrefetch,
  tileWordPrefetch,
} from "./tile-wgsl.js";

/** The forward's programs (see above): "one_pass" goes with "redo" after it; "two_pass" runs alone. */
export type MatrixForwardVariant = "two_pass" | "one_pass" | "redo";

/**
 * A one-pass workgroup marks itself for the redo when a tile's row max passes the row's m by more than this:
 * P = exp(x - m) then stays below e^10 (22026), inside f16's 65504.
 */
const GROWTH = 10;

/**
 * dc, dvc: head-dim classes (64 or 128); `loadBatch`: loads in flight per lane in the K/V tile loads;
 * `redoAll` (tests of the redo path): every one-pass workgroup marks itself.
 */
export function matrixForwardWgsl(
  dc: number,
  dvc: number,
  t: MatrixTile,
  loadBatch = 16,
  variant: MatrixForwardVariant = "two_pass",
  redoAll = false,
): string {
  const { bkv, sgw, kt, rot, prefetch } = t;
  const words = prefetch && t.words === true;
  const double = prefetch && t.doubleKv === true;
  const threads = matrixThreads(t);
  const bq = 16 * sgw;
  const dk = dc / 16;
  const nv = dvc / 16;
  const nj = bkv / 16;
  const half = bkv / 2;
  const block = 16 * bkv; // a subgroup's part of sS
  const stride = matrixLayout(t, dc, dvc);
  const pBlock = 16 * stride.p; // a subgroup's part of sP
  // With `double` sK and sV hold two tiles each: the one being read is tile `cur`'s (staged below).
  const kBase = double ? `cur * ${stride.kTile}u + ` : "";
  const vBase = double ? `cur * ${stride.vTile}u + ` : "";
  // The K^T fragment of dim block k and key block j.
  const kFragment = (j: number, k: number) =>
    kt
      ? `subgroupMatrixLoad<${R}, row_major>(&sK, ${kBase}${k * 16 * stride.k + j * 16}u, ${stride.k}u)`
      : `subgroupMatrixLoad<${R}, col_major>(&sK, ${kBase}${j * 16 * stride.k + k * 16}u, ${stride.k}u)`;
  const scores = `${rep(nj, (j) => `var s${j} = ${ACC}();`)}
    ${rep(nj * dk, (x) => {
      const j = Math.floor(x / dk);
      const k = x % dk;
      return `s${j} = subgroupMatrixMultiplyAccumulate(q${k}, ${kFragment(j, k)}, s${j});`;
    })}
    ${rep(nj, (j) => `subgroupMatrixStore<row_major>(&sS, sub * ${block}u + ${j * 16}u, s${j}, ${bkv}u);`)}`;
  // Element (r, c) of a staged K or V tile; `slot` (double only) is the WGSL index of the tile's half.
  const tileOptions = (name: "k" | "v", slot = ""): TileLoadOptions => {
    const base = slot ? `${slot} * ${name === "k" ? stride.kTile : stride.vTile}u + ` : "";
    return {
      name,
      array: name === "k" ? "sK" : "sV",
      side: "flat",
      n: bkv,
      cls: name === "k" ? dc : dvc,
      threads,
      chunk: loadBatch,
      first: "j0",
      limit: "s.lk",
      dim: name === "k" ? "U.d" : "U.dv",
      index: (row, col) => `${name}_index(s, bi, ${row}, hk, ${col})`,
      strides: [`U.${name}_ss`, `U.${name}_sd`],
      target:
        name === "k"
          ? kt
            ? (r, c) => `sK[${base}(${c}) * ${stride.k}u + ${r}]`
            : (r, c) => `sK[${base}(${r}) * ${stride.k}u + ${c}]`
          : (r, c) => `sV[${base}(${r}) * ${stride.v}u + ${c}]`,
      convert: (x) => `f16(${x})`,
    };
  };
  // With `prefetch`, a lane holds its part of the next K (and V) tile in registers, loaded while the workgroup
  // computes on the current one and stored after the top barrier: the loads' latency overlaps the products.
  // With `double` as well, tile t + 1 is stored while tile t is read: K before the top barrier (tile t - 1's
  // K was last read before the previous softmax barrier), V after it (tile t - 1's V is read up to the top
  // barrier), so the barrier before the stores goes; the registers then hold tile t + 2.
  const prefetcher = (name: "k" | "v", slot = "") =>
    (words ? tileWordPrefetch : tilePrefetch)(tileOptions(name, slot));
  const first = "(keys.x / BKV) * BKV";
  interface Staging {
    /** Before the key loop. */
    readonly before: string;
    /** The loop's top: the tile's K and V staged and visible to every subgroup at its end. */
    readonly top: string;
  }
  const staged = (names: readonly ("k" | "v")[]): Staging => {
    if (!prefetch)
      return {
        before: "",
        top: `workgroupBarrier();
    ${names.map((n) => tileLoad(tileOptions(n))).join("\n    ")}
    workgroupBarrier();`,
      };
    const fetch = (at: string) => names.map((n) => prefetcher(n).fetch(at)).join("\n    ");
    if (!double)
      return {
        before: fetch(first),
        top: `workgroupBarrier();
    ${names.map((n) => prefetcher(n).store).join("\n    ")}
    ${fetch("j0 + BKV")}
    workgroupBarrier();`,
      };
    const store = (n: "k" | "v", slot: string) => (names.includes(n) ? prefetcher(n, slot).store : "");
    // The barrier first: the workgroup may still be reading both halves in an earlier loop over the keys.
    return {
      before: `workgroupBarrier();
  ${fetch(first)}
  ${store("k", "0u")}
  ${store("v", "0u")}
  ${fetch(`${first} + BKV`)}`,
      top: `let cur = ((j0 - ${first}) / BKV) & 1u;
    ${store("k", "(1u - cur)")}
    workgroupBarrier();
    ${store("v", "(1u - cur)")}
    ${fetch("j0 + 2u * BKV")}`,
    };
  };
  // Softmax lanes: lane 2r + h handles columns h * BKV/2 .. of row r of its subgroup's block. With `rot` lane
  // visits them from a lane-dependent offset, so that the 32 lanes' first addresses fall in 32 banks (rows are
  // BKV f32 apart: unrotated, all lanes of a half start in one bank).
  const offset = half === 8 ? "r / 2u" : half === 16 ? "r" : "r + 16u * (lane % 2u)";
  const column = rot ? `let cc = (c + rot) & ${half - 1}u;` : "let cc = c;";
  const overRow = (body: string) => `for (var c = 0u; c < ${half}u; c++) {
        ${column}
        ${body}
      }`;
  const keyLoop = (body: string) => `for (var j0 = (keys.x / BKV) * BKV; j0 < keys.y; j0 += BKV) {
    ${body}
  }`;
  const qBlock = (k: number) =>
    stagedLeft({
      name: `q${k}`,
      scratch: "sP",
      stride: stride.p,
      rows: bq,
      threads,
      first: "i0",
      col0: k * 16,
      limit: "s.lq",
      dim: "U.d",
      load: (row, col) => `ld_q(q_index(s, bi, ${row}, hi, ${col}))`,
    });
  const pv = rep(nj, (j) => {
    const p = `subgroupMatrixLoad<${L}, row_major>(&sP, sub * ${pBlock}u + ${j * 16}u, ${stride.p}u)`;
    return `{
      let p = ${p};
      ${rep(nv, (n) => `o${n} = subgroupMatrixMultiplyAccumulate(p, subgroupMatrixLoad<${R}, row_major>(&sV, ${vBase}${j * 16 * stride.v + n * 16}u, ${stride.v}u), o${n});`, "\n      ")}
    }`;
  });
  const plainTile = "tile_plain(s, q_first, q_first + 15u, j0, j0 + BKV - 1u)";
  // A key tile's K and V staged, and its scores S = Q K^T in the subgroup's part of sS.
  const kv = staged(["k", "v"]);
  const kvScores = `${kv.top}
    ${scores}
    workgroupBarrier();`;
  const kOnly = staged(["k"]);
  const twoPass = `var m = sink_of(hi);
  let keys = key_range(s, i0, min(i0 + BQ, s.lq) - 1u);
  ${kOnly.before}
  ${keyLoop(`${kOnly.top}
    ${scores}
    workgroupBarrier();
    var mx = MASKED;
    if (${plainTile}) {
      ${overRow("mx = max(mx, sS[srow + cc] * U.scale);")}
    } else {
      ${overRow("mx = max(mx, score(s, bi, hi, i, j0 + c0 + cc, sS[srow + cc]));")}
    }
    m = max(m, max(mx, subgroupShuffleXor(mx, 1u)));`)}
  var sum = 0.0;
  ${rep(nv, (n) => `var o${n} = ${ACC}();`, "\n  ")}
  ${kv.before}
  ${keyLoop(`${kvScores}
    if (U.dropout_on == 0u && ${plainTile}) {
      ${overRow("let p = exp(sS[srow + cc] * U.scale - m);\n        sum += p;\n        sP[prow + cc] = f16(p);")}
    } else {
      ${overRow(`let j = j0 + c0 + cc;
        let x = score(s, bi, hi, i, j, sS[srow + cc]);
        var p = select(exp(x - m), 0.0, is_masked(x));
        sum += p;
        if (U.dropout_on != 0u) { p = select(0.0, p * U.dropout_scale, dropout_keep(bi, hi, i, j)); }
        sP[prow + cc] = f16(p);`)}
    }
    workgroupBarrier();
    ${pv}`)}
  let kept = 1.0;`;
  // The scores go back into sS in place (each lane rereads only its own), so that score() runs once per pair.
  // Dropout's 1 / (1 - p) is applied to O at the end (`kept`), keeping P below e^GROWTH.
  const onePass = `var m = sink_of(hi);
  var m_set = false;
  var redo = ${redoAll ? "true" : "false"};
  var sum = 0.0;
  ${rep(nv, (n) => `var o${n} = ${ACC}();`, "\n  ")}
  let keys = key_range(s, i0, min(i0 + BQ, s.lq) - 1u);
  ${kv.before}
  ${keyLoop(`${kvScores}
    var mx = MASKED;
    let plain = ${plainTile};
    if (plain) {
      ${overRow("let x = sS[srow + cc] * U.scale;\n        sS[srow + cc] = x;\n        mx = max(mx, x);")}
    } else {
      ${overRow("let x = score(s, bi, hi, i, j0 + c0 + cc, sS[srow + cc]);\n        sS[srow + cc] = x;\n        mx = max(mx, x);")}
    }
    mx = max(mx, subgroupShuffleXor(mx, 1u));
    if (!m_set && !is_masked(mx)) {
      m = max(m, mx);
      m_set = true;
    }
    redo = redo || mx > m + ${GROWTH.toFixed(1)};
    if (U.dropout_on == 0u && plain) {
      ${overRow("let p = exp(sS[srow + cc] - m);\n        sum += p;\n        sP[prow + cc] = f16(p);")}
    } else {
      ${overRow(`let j = j0 + c0 + cc;
        let x = sS[srow + cc];
        var p = select(exp(x - m), 0.0, is_masked(x));
        sum += p;
        if (U.dropout_on != 0u && !dropout_keep(bi, hi, i, j)) { p = 0.0; }
        sP[prow + cc] = f16(p);`)}
    }
    workgroupBarrier();
    ${pv}`)}
  if (redo) { redo_buf[(wg.z * nwg.y + wg.y) * nwg.x + wg.x] = 1u; }
  let kept = select(1.0, U.dropout_scale, U.dropout_on != 0u);`;
  // A redo workgroup returns at once unless its one-pass run marked it (redo_buf is read-only here: uniform).
  const redoCheck =
    variant === "redo" ? "if (redo_buf[(wg.z * nwg.y + wg.y) * nwg.x + wg.x] == 0u) { return; }\n  " : "";
  return `${attentionWgsl(["q", "k", "v", "sink"], true)}
const BKV = ${bkv}u;
const BQ = ${bq}u;
const TM = 1u;
const RW = ${bkv / 4}u;

var<workgroup> sK: array<f16, ${(double ? 2 : 1) * stride.kTile}>;
var<workgroup> sV: array<f16, ${(double ? 2 : 1) * stride.vTile}>;
var<workgroup> sS: array<f32, ${sgw * block}>;
var<workgroup> sP: array<f16, ${sgw * pBlock}>;
${TILE_WGSL}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  ${redoCheck}let bi = wg.z;
  let hi = wg.y;
  let i0 = (nwg.x - 1u - wg.x) * BQ;
  let s = seq_of(bi);
  let hk = hi / (U.h / U.hg);
  if (i0 >= s.lq) {
    for (var r = tid; r < BQ; r += ${threads}u) {
      if (i0 + r < U.sq) { lse_buf[row_index(bi, hi, i0 + r)] = neg_inf(); }
    }
    return;
  }
  let sub = tid / ${threads / sgw}u;
  let q_first = i0 + sub * 16u;
  ${rep(dk, qBlock, "\n  ")}
  let r = lane / 2u;
  let i = q_first + r;
  let c0 = (lane % 2u) * ${half}u;
  let srow = sub * ${block}u + r * ${bkv}u + c0;
  let prow = sub * ${pBlock}u + r * ${stride.p}u + c0;
  ${rot ? `let rot = ${offset};` : ""}
  ${prefetch ? `${prefetcher("k").regs}\n  ${prefetcher("v").regs}` : ""}
  ${variant === "one_pass" ? onePass : twoPass}
  // The sink's exp(sink - m) (m started at the sink) and the row's sum over both lanes.
  let l = select(0.0, exp(sink_of(hi) - m), U.softmax != 0u) + sum + subgroupShuffleXor(sum, 1u);
  let inv = select(0.0, kept / l, l > 0.0);
  ${rep(
    nv,
    (n) =>
      stagedStore({
        acc: `o${n}`,
        scratch: "sS",
        stride: bkv,
        first: "q_first",
        col0: n * 16,
        limit: "s.lq",
        dim: "U.dv",
        rowScale: "inv",
        target: (row, col, value) => `o_buf[o_index(s, bi, ${row}, hi, ${col})] = ${value};`,
      }),
    "\n  ",
  )}
  if (lane % 2u == 0u && i < U.sq) {
    var lse = neg_inf();
    if (i < s.lq && l > 0.0) { lse = m + log(l); }
    lse_buf[row_index(bi, hi, i)] = lse;
  }
}
`;
}
