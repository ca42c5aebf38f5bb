/**
 * What the register-tiled flash programs share: code generation helpers, the XOR-swizzled addressing of their
 * workgroup tiles and the test for tiles that need no per-element mask or bias.
 *
 * Layout: lanes form groups of four; a group owns TM consecutive "rows" of a tile (queries in the forward and
 * dQ passes, keys in the dK/dV pass) and lane tx of a group owns the tile's "columns" tx, tx + 4, ... (as vec4s
 * of four columns 4 apart) and the vec4 output columns tx, tx + 4, ... of its rows. Row-side arrays are read
 * by the groups of a subgroup at the same column: rows are swizzled by row group. Column-side arrays are read
 * by the four lanes of a group at different rows: rows are swizzled by row index.
 */
export const rep = (n: number, f: (i: number) => string, sep = "\n"): string =>
  Array.from({ length: n }, (_, i) => f(i)).join(sep);

/** Needs the constants TM (rows per group) and RW (vec4 words per row of a P-like tile, a power of two). */
export const TILE_WGSL = `
const SW = 7u;
// vec4 word c4 of row r in a row-side array of n4 words per row (n4 >= 8, a power of two).
fn rowa(r: u32, c4: u32, n4: u32) -> u32 { return r * n4 + (c4 ^ ((r / TM) & SW)); }
// vec4 word c4 of row j in a column-side array.
fn cola(j: u32, c4: u32, n4: u32) -> u32 { return j * n4 + (c4 ^ (j & SW)); }
// vec4 word c4 of row r in an unswizzled array (read by the lanes of a group at consecutive words).
fn flat(r: u32, c4: u32, n4: u32) -> u32 { return r * n4 + c4; }
// vec4 word j4 of row r in a tile of scores (rows x columns), swizzled by row group.
fn pa(r: u32, j4: u32) -> u32 { return r * RW + (j4 ^ ((r / TM) & min(RW - 1u, SW))); }

// Whether every (query, key) pair of the tile may attend with the plain scaled score (no bias, no arbitrary
// mask, keys within the sequence, the whole tile inside the causal/window band). Queries past the sequence's
// length need no test: their rows are zeros that are never stored.
fn tile_plain(s: Seq, i_first: u32, i_last: u32, j_first: u32, j_last: u32) -> bool {
  if (U.bias_kind != 0u || U.amask != 0u || j_last >= s.lk) { return false; }
  let lo = i32(j_first) - i32(i_last) - s.off;
  let hi = i32(j_last) - i32(i_first) - s.off;
  if (U.causal != 0u && hi > 0) { return false; }
  if (U.win_left >= 0 && lo < -U.win_left) { return false; }
  if (U.win_right >= 0 && hi > U.win_right) { return false; }
  return true;
}
`;

/**
 * Unrolled accumulation of a dot-product tile: acc{i}_{g} += (row_i . col(g*16 + n*4 + tx)) for n = 0..3,
 * over the vec4 words c4 < n4 of a row-side and a column-side array.
 */
export function dotTile(opts: {
  acc: string;
  rows: string;
  cols: string;
  words: string;
  stride: string;
  tm: number;
  kg: number;
}): string {
  const { acc, rows, cols, words, stride, tm, kg } = opts;
  return `for (var c4 = 0u; c4 < ${words}; c4++) {
      ${rep(kg, (g) => rep(4, (n) => `let ${cols}${g}_${n} = ${cols}_t[cola(${g * 16 + n * 4}u + tx, c4, ${stride})];`))}
      ${rep(
        tm,
        (i) => `let ${rows}${i} = ${rows}_t[rowa(row0 + ${i}u, c4, ${stride})];
      ${rep(kg, (g) => `${acc}${i}_${g} += vec4<f32>(${rep(4, (n) => `dot(${rows}${i}, ${cols}${g}_${n})`, ", ")});`)}`,
      )}
    }`;
}

/**
 * Copies rows [first, first + n) of tensor `name` (columns up to the head-dim class `cls` = `words` vec4s, zeros
 * past the call's dim `dim` and past row `limit`) into a workgroup array, addressed by `side` (rowa, cola, flat).
 * Every lane issues `chunk` loads before it stores any: in a loop of single loads each store waits out the
 * memory latency, which left the GPU idle most of the time (measured on the H200). Loads past the tensor read a
 * clamped element (WebGPU's robust buffer access) that `select` discards.
 */
export function tileLoad(opts: {
  name: string;
  array: string;
  side: "rowa" | "cola" | "flat";
  n: number;
  cls: number;
  threads: number;
  chunk: number;
  first: string;
  limit: string;
  dim: string;
  index: (row: string, col: string) => string;
  /** The destination of tile element (r, c) when it is not `side`'s vec4 word plus component. */
  target?: (r: string, c: string) => string;
}): string {
  const { name, array, side, n, cls, threads, first, limit, dim, index } = opts;
  const total = n * cls;
  const chunk = Math.max(1, Math.min(opts.chunk, total / threads));
  if (total % (threads * chunk) !== 0)
    throw new Error(`tileLoad: ${total} elements do not split into ${threads} x ${chunk}`);
  const words = cls / 4;
  return `for (var eb = tid; eb < ${total}u; eb += ${threads * chunk}u) {
      ${rep(
        chunk,
        (u) => `let e${u} = eb + ${u * threads}u;
      let x${u} = select(0.0, ld_${name}(${index(`${first} + e${u} / ${cls}u`, `e${u} % ${cls}u`)}), ${first} + e${u} / ${cls}u < ${limit} && e${u} % ${cls}u < ${dim});`,
      )}
      ${rep(chunk, (u) => `${opts.target ? opts.target(`e${u} / ${cls}u`, `e${u} % ${cls}u`) : `${array}[${side}(e${u} / ${cls}u, (e${u} % ${cls}u) / 4u, ${words}u)][e${u} % 4u]`} = x${u};`)}
    }`;
}
