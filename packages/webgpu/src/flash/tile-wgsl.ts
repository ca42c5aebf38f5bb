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
 * over the vec4 words c4 < n4 of a row-side and a column-side array. Each component is a chain of four fma()
 * into the accumulator: `acc += dot(a, b)` costs a multiply and an add more per four products.
 */
const fmaChain = (a: string, b: string, acc: string): string =>
  ["x", "y", "z", "w"].reduce((sum, c) => `fma(${a}.${c}, ${b}.${c}, ${sum})`, acc);

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
      ${rep(kg, (g) => `${acc}${i}_${g} = vec4<f32>(${rep(4, (n) => fmaChain(`${rows}${i}`, `${cols}${g}_${n}`, `${acc}${i}_${g}.${"xyzw"[n]}`), ", ")});`)}`,
      )}
    }`;
}

export interface TileLoadOptions {
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
  /** Row and column strides (elements) of the tensor, as WGSL expressions. */
  strides: [string, string];
  /** The destination of tile element (r, c) when it is not `side`'s vec4 word plus component. */
  target?: (r: string, c: string) => string;
  /** Wraps the f32 value stored (e.g. `f16(x)` for an f16 array); none by default. */
  convert?: (value: string) => string;
}

/**
 * Which elements of a tile load a lane owns: lane tid's first element is (r0, c0) (`first` rows on), element u
 * is rowsOf(u) rows and colsOf(u) columns further; `load(u, base, rowBase)` reads element u (zero past the
 * tensor's rows and dims) relative to address `base` and row `rowBase`, `dest(u, rowBase)` is where it goes.
 */
function lanePlan(opts: TileLoadOptions) {
  const { n, cls, threads } = opts;
  const words = cls / 4;
  const total = n * cls;
  if (total % threads !== 0 || (threads % cls !== 0 && cls % threads !== 0))
    throw new Error(`tileLoad: ${n} x ${cls} elements do not split over ${threads} lanes`);
  const perLane = total / threads;
  const rowsPerPass = threads >= cls ? threads / cls : 0;
  const passesPerRow = threads >= cls ? 0 : cls / threads;
  const rowsOf = (u: number) => (rowsPerPass ? u * rowsPerPass : Math.floor(u / passesPerRow));
  const colsOf = (u: number) => (rowsPerPass ? 0 : (u % passesPerRow) * threads);
  const [ss, sd] = opts.strides;
  const firstRow = rowsPerPass ? `tid / ${cls}u` : "0u";
  const firstCol = rowsPerPass ? `tid % ${cls}u` : "tid";
  const at = (u: number, base: string) => {
    const dr = rowsOf(u);
    const dc = colsOf(u);
    return `${base}${dr ? ` + ${dr}u * ${ss}` : ""}${dc ? ` + ${dc}u * ${sd}` : ""}`;
  };
  const load = (u: number, base: string, rowBase: string) =>
    `select(0.0, ld_${opts.name}(${at(u, base)}), ${rowBase} + ${rowsOf(u)}u < ${opts.limit} && c0 + ${colsOf(u)}u < ${opts.dim})`;
  const target = (r: string, c: string) =>
    opts.target
      ? opts.target(r, c)
      : `${opts.array}[${opts.side}(${r}, (${c}) / 4u, ${words}u)][(${c}) % 4u]`;
  const dest = (u: number, rowBase: string) => target(`${rowBase} + ${rowsOf(u)}u`, `c0 + ${colsOf(u)}u`);
  const convert = opts.convert ?? ((value: string) => value);
  return { total, perLane, passesPerRow, rowsOf, colsOf, firstRow, firstCol, load, dest, target, convert };
}

/**
 * Copies rows [first, first + n) of tensor `name` (columns up to the head-dim class `cls` = `words` vec4s, zeros
 * past the call's dim `dim` and past row `limit`) into a workgroup array, addressed by `side` (rowa, cola, flat).
 * With `chunk` > 1 every lane issues that many loads before it stores any: in a loop of single loads each store
 * waits out the memory latency, which left the GPU idle most of the time (measured on the H200). Element u of a
 * lane sits a constant number of rows and columns from the lane's first one, so its address is the first
 * address plus constant multiples of the row and column strides (`strides`). Loads past the tensor read a
 * clamped element (WebGPU's robust buffer access) that `select` discards.
 */
export function tileLoad(opts: TileLoadOptions): string {
  const { cls, threads, first, limit, dim, index } = opts;
  const plan = lanePlan(opts);
  if (opts.chunk <= 1) {
    return `for (var e = tid; e < ${plan.total}u; e += ${threads}u) {
      let r = e / ${cls}u;
      let c = e % ${cls}u;
      ${plan.target("r", "c")} = ${plan.convert(`select(0.0, ld_${opts.name}(${index(`${first} + r`, "c")}), ${first} + r < ${limit} && c < ${dim})`)};
    }`;
  }
  // Batch b of `chunk` elements starts b * rowsOf(chunk) rows further (chunk is a multiple of the passes per row).
  const chunk = Math.min(opts.chunk, plan.perLane);
  if (plan.perLane % chunk !== 0 || (plan.passesPerRow && chunk % plan.passesPerRow !== 0))
    throw new Error(`tileLoad: ${plan.perLane} loads per lane do not split into batches of ${chunk}`);
  const [ss] = opts.strides;
  const us = Array.from({ length: chunk }, (_, u) => u);
  return `{
      let r0 = ${first} + ${plan.firstRow};
      let c0 = ${plan.firstCol};
      let a0 = ${index("r0", "c0")};
      for (var b = 0u; b < ${plan.perLane / chunk}u; b++) {
        let rb = r0 + b * ${plan.rowsOf(chunk)}u;
        let ab = a0 + b * ${plan.rowsOf(chunk)}u * ${ss};
        ${us.map((u) => `let x${u} = ${plan.load(u, "ab", "rb")};`).join("\n        ")}
        ${us.map((u) => `${plan.dest(u, `rb - ${first}`)} = ${plan.convert(`x${u}`)};`).join("\n        ")}
      }
    }`;
}

/**
 * A tile load split in two, so that the loads of the next tile are in flight while the lanes compute on the
 * current one: `regs` declares a lane's registers (once, before the loop), `fetch(first)` loads the rows from
 * `first` on into them, `store` writes them to the workgroup array (between the barriers).
 */
export function tilePrefetch(opts: TileLoadOptions): {
  regs: string;
  fetch: (first: string) => string;
  store: string;
} {
  const plan = lanePlan(opts);
  const us = Array.from({ length: plan.perLane }, (_, u) => u);
  const reg = (u: number) => `pf_${opts.name}${u}`;
  return {
    regs: us.map((u) => `var ${reg(u)} = 0.0;`).join("\n  "),
    fetch: (first) => `{
      let r0 = ${first} + ${plan.firstRow};
      let c0 = ${plan.firstCol};
      let a0 = ${opts.index("r0", "c0")};
      ${us.map((u) => `${reg(u)} = ${plan.load(u, "a0", "r0")};`).join("\n      ")}
    }`,
    store: `{
      let c0 = ${plan.firstCol};
      ${us.map((u) => `${plan.dest(u, plan.firstRow)} = ${plan.convert(reg(u))};`).join("\n      ")}
    }`,
  };
}

/**
 * tilePrefetch for 16-bit tensors whose dims are contiguous (dim stride 1) and whose element pairs (2c, 2c + 1)
 * share a 32-bit word (offset, row, head and batch strides and the dim `dim` even; the caller checks): a lane
 * holds raw words, two elements each, so it issues half the loads and keeps half the registers, and a word
 * is unpacked once for both its elements (without the dtype branch of ld_<name>). `strides[1]` is not used.
 */
export function tileWordPrefetch(opts: TileLoadOptions): {
  regs: string;
  fetch: (first: string) => string;
  store: string;
} {
  if (opts.cls % 2 !== 0 || !opts.target)
    throw new Error(`tileWordPrefetch: needs whole words (${opts.cls} columns) and a target`);
  const plan = lanePlan({ ...opts, cls: opts.cls / 2 });
  const us = Array.from({ length: plan.perLane }, (_, u) => u);
  const reg = (u: number) => `pw_${opts.name}${u}`;
  const rowWords = `(${opts.strides[0]} / 2u)`;
  const at = (u: number) => {
    const dr = plan.rowsOf(u);
    const dc = plan.colsOf(u);
    return `a0${dr ? ` + ${dr}u * ${rowWords}` : ""}${dc ? ` + ${dc}u` : ""}`;
  };
  const colOf = (u: number) => `c0 + ${2 * plan.colsOf(u)}u`;
  return {
    regs: us.map((u) => `var ${reg(u)} = 0u;`).join("\n  "),
    fetch: (first) => `{
      let r0 = ${first} + ${plan.firstRow};
      let c0 = 2u * (${plan.firstCol});
      let a0 = (${opts.index("r0", "c0")}) / 2u;
      ${us.map((u) => `${reg(u)} = select(0u, ${opts.name}_buf[${at(u)}], r0 + ${plan.rowsOf(u)}u < ${opts.limit} && ${colOf(u)} < ${opts.dim});`).join("\n      ")}
    }`,
    store: `{
      let c0 = 2u * (${plan.firstCol});
      ${us
        .map((u) => {
          const row = `${plan.firstRow} + ${plan.rowsOf(u)}u`;
          return `{
        let w = unpack2x16float(${reg(u)});
        ${plan.target(row, colOf(u))} = ${plan.convert("w.x")};
        ${plan.target(row, `${colOf(u)} + 1u`)} = ${plan.convert("w.y")};
      }`;
        })
        .join("\n      ")}
    }`,
  };
}
