/**
 * What the subgroup-matrix programs (matrix-forward-wgsl.ts, matrix-backward-wgsl.ts) share: the fragment
 * types, the module's enables and directives, and the staging of a tensor's rows into left fragments.
 *
 * Every accumulator is zeroed explicitly: a bare `var s: subgroup_matrix_result<...>;` in a loop is not
 * re-zeroed per iteration by Dawn on NVIDIA (scripts/gpu/webgpu-tuning/subgroup-matrix-layout.mjs).
 * Fragment offsets depend on the subgroup index, which uniformity analysis cannot prove subgroup-uniform;
 * MATRIX_DIRECTIVES turns that diagnostic off (the index is uniform per subgroup with 32-lane subgroups laid
 * out by local index, which matrixDeviceProblem requires).
 */
export const MATRIX_ENABLES = ["f16", "subgroups", "chromium_experimental_subgroup_matrix"] as const;
export const MATRIX_DIRECTIVES = ["diagnostic(off, chromium.subgroup_matrix_uniformity)"] as const;

export const LEFT = "subgroup_matrix_left<f16, 16, 16>";
export const RIGHT = "subgroup_matrix_right<f16, 16, 16>";
export const RESULT = "subgroup_matrix_result<f32, 16, 16>";

export interface StagedRows {
  /** The fragment's name. */
  name: string;
  /** An f16 workgroup array of at least `rows` rows of `stride` elements (stride >= 16). */
  scratch: string;
  stride: number;
  /** Rows of the workgroup (16 per subgroup) and its invocations. */
  rows: number;
  threads: number;
  /** Its first row and columns col0 .. col0 + 15 of the tensor; zeros from row `limit` and column `dim` on. */
  first: string;
  col0: number;
  limit: string;
  dim: string;
  /** The f32 value of (row, column), both WGSL u32 expressions. */
  load: (row: string, col: string) => string;
}

/**
 * A left fragment of 16 columns of the 16 rows of subgroup `sub`, made by staging the workgroup's rows through
 * `scratch` (a fragment loads from workgroup memory only). Every invocation of the workgroup runs it.
 */
export function stagedLeft(o: StagedRows): string {
  return `workgroupBarrier();
  for (var e = tid; e < ${o.rows * 16}u; e += ${o.threads}u) {
    let r = e / 16u;
    let c = ${o.col0}u + e % 16u;
    ${o.scratch}[r * ${o.stride}u + e % 16u] = f16(select(0.0, ${o.load(`${o.first} + r`, "c")}, ${o.first} + r < ${o.limit} && c < ${o.dim}));
  }
  workgroupBarrier();
  let ${o.name} = subgroupMatrixLoad<${LEFT}, row_major>(&${o.scratch}, sub * ${16 * o.stride}u, ${o.stride}u);`;
}

/**
 * Writes result fragment `acc` of subgroup `sub` (16 rows from `first`, columns col0 ..) through an f32
 * workgroup array `scratch` (stride >= 16) to `target(row, col, value)` where row < limit and col < dim.
 * `rowScale`, if given, is an f32 each lane holds for row lane / 2 of the fragment (the softmax lanes' layout):
 * every value is multiplied by its row's. Every invocation of the workgroup runs it; the loop's trip count is
 * the same for all lanes, so the row scale can be shuffled inside it.
 */
export function stagedStore(o: {
  acc: string;
  scratch: string;
  stride: number;
  first: string;
  col0: number;
  limit: string;
  dim: string;
  rowScale?: string;
  target: (row: string, col: string, value: string) => string;
}): string {
  const staged = `${o.scratch}[sub * ${16 * o.stride}u + (e / 16u) * ${o.stride}u + e % 16u]`;
  return `workgroupBarrier();
    subgroupMatrixStore<row_major>(&${o.scratch}, sub * ${16 * o.stride}u, ${o.acc}, ${o.stride}u);
    workgroupBarrier();
    for (var part = 0u; part < 8u; part++) {
      let e = lane + 32u * part;
      ${o.rowScale ? `let row_scale = subgroupShuffle(${o.rowScale}, 2u * (e / 16u));` : ""}
      let row = ${o.first} + e / 16u;
      let col = ${o.col0}u + e % 16u;
      if (row < ${o.limit} && col < ${o.dim}) { ${o.target("row", "col", o.rowScale ? `${staged} * row_scale` : staged)} }
    }`;
}
