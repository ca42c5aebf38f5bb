/**
 * Tiles of the backward on subgroup matrices (matrix-backward-wgsl.ts); the device and dtype conditions are the
 * forward's (matrix-tiles.ts). A workgroup has `sgw` subgroups of 16 rows each (queries for dQ, keys for
 * dK/dV) and steps over `cols` columns (keys, queries) at a time.
 */
import type { AttentionParams } from "@te/core";
import { MATRIX_MAX_HEAD_DIM, MATRIX_SUBGROUP, matrixDeviceProblem, matrixDimClass } from "./matrix-tiles.js";
import { matrixBackwardOverride } from "./tile-override.js";

export type MatrixBackwardPass = "dq" | "dkdv";

export interface MatrixBackwardTile {
  readonly cols: number;
  readonly sgw: number;
  /**
   * Rows of the staged column tiles and of the f16 operands 16 bytes longer (matrixBackwardLayout), against the
   * workgroup-memory bank conflicts of fragment loads (as the forward's `pad`, matrix-tiles.ts).
   */
  readonly pad?: boolean;
  /** Column tiles loaded as words of two f16 where the call's layout allows (tileWordPrefetch). */
  readonly words?: boolean;
  readonly why: string;
}

/** Row strides (f16 elements) of the staged column tiles of each head-dim class and of the subgroups' f16 operands. */
export function matrixBackwardLayout(t: MatrixBackwardTile, dc: number, dvc: number) {
  const pad = t.pad ? 8 : 0;
  return { d: dc + pad, dv: dvc + pad, ops: t.cols + pad };
}

/**
 * By head-dim class (the larger of d and dv). dK/dV keeps its keys' K and V fragments and the dK and dV
 * accumulators in registers (4 fragments of 64 dims each), so it takes fewer subgroups for d128. H200, b2 h16
 * s2048 fp16 fwd+bwd, padded rows and word loads, each tile alone in its bench process (benchmarks/results/
 * webgpu-subgroup-matrix-h200, round 6): d64 dQ cols16 sgw4 3.59 ms (causal 2.41) and dK/dV cols16 sgw4 3.70
 * (2.58), each with the other pass at cols32 sgw4, against 4.41 (2.95) for both at cols32 sgw4; d128 none of
 * cols16/32 x sgw2-8 beat dQ cols16 sgw8 with dK/dV cols16 sgw4 (5.14, causal 3.81).
 */
export const MATRIX_BACKWARD_TILES: Readonly<
  Record<MatrixBackwardPass, Readonly<Record<64 | 128, MatrixBackwardTile>>>
> = {
  dq: {
    64: {
      cols: 16,
      sgw: 4,
      pad: true,
      words: true,
      why: "d64: 16 KiB of workgroup memory, 64 queries per workgroup",
    },
    128: { cols: 16, sgw: 8, pad: true, words: true, why: "d128: 31 KiB, 128 queries per workgroup" },
  },
  dkdv: {
    64: { cols: 16, sgw: 4, pad: true, words: true, why: "d64: 19 KiB, 64 keys per workgroup" },
    128: { cols: 16, sgw: 4, pad: true, words: true, why: "d128: 23 KiB, 64 keys per workgroup" },
  },
};

/**
 * Workgroup bytes: the column tiles (f16: K and V for dQ, Q and dO for dK/dV); per subgroup row the two f32
 * products (S, dP) and the f16 operands made from them (dS for dQ; P and dS for dK/dV, plus the columns' lse and D).
 */
export function matrixBackwardBytes(
  pass: MatrixBackwardPass,
  t: MatrixBackwardTile,
  dc: number,
  dvc: number,
): number {
  const l = matrixBackwardLayout(t, dc, dvc);
  const tiles = 2 * t.cols * (l.d + l.dv);
  const rows = 16 * t.sgw;
  const products = rows * t.cols * (4 + 4);
  return pass === "dq"
    ? tiles + products + rows * l.ops * 2
    : tiles + products + rows * l.ops * (2 + 2) + 8 * t.cols;
}

export const matrixBackwardThreads = (t: MatrixBackwardTile): number => MATRIX_SUBGROUP * t.sgw;

export interface MatrixBackwardChoice {
  readonly tile: MatrixBackwardTile;
  readonly dc: number;
  readonly dvc: number;
}

/** The pass's tile on `device` for the call, or why the matrix backward cannot take it. */
export function chooseMatrixBackwardTile(
  device: GPUDevice,
  pass: MatrixBackwardPass,
  p: Pick<AttentionParams, "d" | "dv" | "dtype">,
): MatrixBackwardChoice | { problem: string } {
  const problem = matrixDeviceProblem(device);
  if (problem) return { problem };
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env?.TE_WEBGPU_FLASH_MATRIX_BACKWARD === "0")
    return { problem: "turned off by TE_WEBGPU_FLASH_MATRIX_BACKWARD=0" };
  if (p.dtype !== "fp16") return { problem: `dtype ${p.dtype} (subgroup matrices take fp16 inputs only)` };
  if (p.d > MATRIX_MAX_HEAD_DIM || p.dv > MATRIX_MAX_HEAD_DIM)
    return { problem: `head dims d=${p.d}, dv=${p.dv} above ${MATRIX_MAX_HEAD_DIM}` };
  const dc = matrixDimClass(p.d);
  const dvc = matrixDimClass(p.dv);
  const threads = (t: MatrixBackwardTile) => matrixBackwardThreads(t);
  const fits = (t: MatrixBackwardTile) =>
    matrixBackwardBytes(pass, t, dc, dvc) <= device.limits.maxComputeWorkgroupStorageSize &&
    threads(t) <= device.limits.maxComputeInvocationsPerWorkgroup &&
    threads(t) <= device.limits.maxComputeWorkgroupSizeX &&
    // The column tiles' loads split evenly over the lanes (tile-wgsl.ts's tileLoad).
    [dc, dvc].every(
      (cls) => (t.cols * cls) % threads(t) === 0 && (threads(t) % cls === 0 || cls % threads(t) === 0),
    );
  const override = matrixBackwardOverride(pass);
  const tile =
    override && fits(override) ? override : MATRIX_BACKWARD_TILES[pass][Math.max(dc, dvc) as 64 | 128];
  if (!fits(tile))
    return {
      problem: `its ${pass} tile needs ${matrixBackwardBytes(pass, tile, dc, dvc)} bytes of workgroup memory and ${threads(tile)} invocations`,
    };
  return { tile, dc, dvc };
}
