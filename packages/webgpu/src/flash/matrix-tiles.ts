/**
 * When and how webgpu.flash runs its forward on subgroup matrices (matrix-forward-wgsl.ts): the tensor cores,
 * reached through Dawn's `chromium-experimental-subgroup-matrix` feature (VK_KHR_cooperative_matrix on Vulkan).
 * A workgroup of SGW subgroups of 32 lanes owns 16 * SGW query rows, one 16-row fragment per subgroup, and walks
 * the keys in tiles of BKV staged in workgroup memory as f16.
 *
 * Only fp16 inputs take this path: the fragments are f16, so fp32 or bf16 inputs would be rounded beyond their
 * tolerance. Everything else (masks, biases, windows, GQA, softmax types, dropout, thd) is the same WGSL as the
 * register-tiled forward, evaluated by lanes on the f32 scores. Where the device or call does not qualify the
 * register-tiled forward runs instead; `matrixForwardProblem` says why.
 *
 * TE_WEBGPU_FLASH_MATRIX=0 (Node) turns the path off; TE_WEBGPU_FLASH_TILES's "matrix" entry (tile-override.ts)
 * replaces the table's tile for benchmarks (ignored where it does not fit).
 */
import type { AttentionParams } from "@te/core";
import { adapterInfoOf } from "../device.js";
import { matrixOverride } from "./tile-override.js";

export interface MatrixTile {
  /** Keys per tile. */
  readonly bkv: number;
  /** Subgroups per workgroup (16 query rows each). */
  readonly sgw: number;
  /** K is staged transposed ([d, bkv]), so that K^T fragments are row-major loads. */
  readonly kt: boolean;
  /** The softmax lanes visit their half rows in rotated orders that avoid workgroup-memory bank conflicts. */
  readonly rot: boolean;
  /** One pass over the keys, with a redo of the rare workgroups whose scores outgrow it (matrix-forward-wgsl.ts). */
  readonly onePass: boolean;
  /** The next K/V tile is loaded into registers while the current one is computed on (matrix-forward-wgsl.ts). */
  readonly prefetch: boolean;
  /**
   * With `prefetch`: K and V are prefetched as raw 32-bit words (two f16 each) where their layout allows
   * (tileWordPrefetch; the call's check is matrixWordsProblem).
   */
  readonly words?: boolean;
  /**
   * With `prefetch`: two K and V tiles in workgroup memory, the next stored while the current one is read,
   * which saves a barrier per key tile (matrix-forward-wgsl.ts).
   */
  readonly doubleKv?: boolean;
  /**
   * Rows of the staged K, V and P padded by 16 bytes (matrixLayout), so that the 8 rows a fragment load reads
   * at once fall in different workgroup-memory banks: unpadded, rows 128 or 256 bytes apart all start in bank 0.
   */
  readonly pad?: boolean;
  readonly why: string;
}

/** Lanes per subgroup the fragment layout assumes (the softmax pairs lanes 2r, 2r + 1 for row r). */
export const MATRIX_SUBGROUP = 32;
export const MATRIX_MAX_HEAD_DIM = 128;

/**
 * Tiles by head-dim class (the larger of d and dv). H200, b2 h16 s2048 fp16 forward (benchmarks/results/
 * webgpu-subgroup-matrix-h200, rounds 4-6), each tile alone in its bench process: bkv16 sgw8 with K transposed and
 * rotated softmax lanes; one pass with the next K/V tile prefetched into registers as raw f16 pairs (words); rows of
 * K, V and P padded in workgroup memory. GPU time d64 0.52 ms (causal 0.45), d128 1.16 (0.91), against 0.83 (0.69)
 * and 1.75 (1.27) unpadded, 0.84 (0.69) and 2.23 (1.58) prefetching elements, and 1.16 (0.95) and 3.00 (2.09)
 * two-pass without prefetch (round 5). Padded alternatives (round 6): bkv32 d64 0.79, d128 1.13 (0.88); sgw16 d64
 * 0.55, d128 3.85; K untransposed d64 0.47 (0.61), d128 2.75. Two K/V tiles (doubleKv) gained nothing and ran
 * erratically. Round 4 (pipelined ms): bkv32 sgw8 2.5-3.3 against 1.4-1.9, sgw4 2.5, sgw16 3.8.
 */
export const MATRIX_TILES: Readonly<Record<64 | 128, MatrixTile>> = {
  64: {
    bkv: 16,
    sgw: 8,
    kt: true,
    rot: true,
    onePass: true,
    prefetch: true,
    words: true,
    pad: true,
    why: "d64: 0.52 ms of GPU time at s2048 on the H200, against 0.83 unpadded and 1.16 two-pass",
  },
  128: {
    bkv: 16,
    sgw: 8,
    kt: true,
    rot: true,
    onePass: true,
    prefetch: true,
    words: true,
    pad: true,
    why: "d128: 1.16 ms of GPU time at s2048 on the H200, against 1.75 unpadded and 3.00 two-pass",
  },
};

export const matrixDimClass = (n: number): 64 | 128 => (n <= 64 ? 64 : 128);

/** Row strides (f16 elements) of the staged K (K^T where `kt`), V and P, and the f16 elements of a K and a V tile. */
export function matrixLayout(t: MatrixTile, dc: number, dvc: number) {
  const pad = t.pad ? 8 : 0;
  const k = t.kt ? t.bkv + pad : dc + pad;
  const v = dvc + pad;
  const p = t.bkv + pad;
  return { k, v, p, kTile: (t.kt ? dc : t.bkv) * k, vTile: t.bkv * v };
}

/** Workgroup bytes: K and V tiles (f16; two of each with doubleKv), the scores (f32) and P (f16) of every subgroup. */
export function matrixBytes(t: MatrixTile, dc: number, dvc: number): number {
  const l = matrixLayout(t, dc, dvc);
  return (t.doubleKv ? 2 : 1) * 2 * (l.kTile + l.vTile) + 16 * t.sgw * (4 * t.bkv + 2 * l.p);
}

export const matrixThreads = (t: MatrixTile): number => MATRIX_SUBGROUP * t.sgw;
/** Query rows of a workgroup. */
export const matrixRows = (t: MatrixTile): number => 16 * t.sgw;

const env = (): Record<string, string | undefined> | undefined =>
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;

export const MATRIX_FEATURES = ["subgroups", "shader-f16", "chromium-experimental-subgroup-matrix"] as const;

interface MatrixConfig {
  componentType?: string;
  resultComponentType?: string;
  M?: number;
  N?: number;
  K?: number;
}

interface AdapterFacts {
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  subgroupMatrixConfigs?: Iterable<MatrixConfig>;
}

/** Why the device cannot run the matrix forward at all, or null. */
export function matrixDeviceProblem(device: GPUDevice): string | null {
  if (env()?.TE_WEBGPU_FLASH_MATRIX === "0") return "turned off by TE_WEBGPU_FLASH_MATRIX=0";
  const missing = MATRIX_FEATURES.filter((f) => !device.features.has(f));
  if (missing.length) return `the device lacks the feature(s) ${missing.join(", ")}`;
  const info = adapterInfoOf(device) as AdapterFacts;
  if (info.subgroupMinSize !== MATRIX_SUBGROUP || info.subgroupMaxSize !== MATRIX_SUBGROUP)
    return `subgroups of ${info.subgroupMinSize}-${info.subgroupMaxSize} lanes (the fragment layout needs exactly ${MATRIX_SUBGROUP})`;
  const configs = [...(info.subgroupMatrixConfigs ?? [])];
  const f16 = configs.some(
    (c) =>
      c.componentType === "f16" && c.resultComponentType === "f32" && c.M === 16 && c.N === 16 && c.K === 16,
  );
  if (!f16) return "no f16 x f16 -> f32 16x16x16 subgroup-matrix configuration";
  return null;
}

export interface MatrixChoice {
  readonly tile: MatrixTile;
  readonly dc: number;
  readonly dvc: number;
}

/** The matrix forward's tile for the call on `device`, or why there is none. */
export function chooseMatrixTile(
  device: GPUDevice,
  p: Pick<AttentionParams, "d" | "dv" | "dtype">,
): MatrixChoice | { problem: string } {
  const problem = matrixDeviceProblem(device);
  if (problem) return { problem };
  if (p.dtype !== "fp16") return { problem: `dtype ${p.dtype} (subgroup matrices take fp16 inputs only)` };
  if (p.d > MATRIX_MAX_HEAD_DIM || p.dv > MATRIX_MAX_HEAD_DIM)
    return { problem: `head dims d=${p.d}, dv=${p.dv} above ${MATRIX_MAX_HEAD_DIM}` };
  const dc = matrixDimClass(p.d);
  const dvc = matrixDimClass(p.dv);
  const fits = (t: MatrixTile) =>
    matrixBytes(t, dc, dvc) <= device.limits.maxComputeWorkgroupStorageSize &&
    matrixThreads(t) <= device.limits.maxComputeInvocationsPerWorkgroup &&
    matrixThreads(t) <= device.limits.maxComputeWorkgroupSizeX &&
    [dc, dvc].every((cls) => (t.bkv * cls) % matrixThreads(t) === 0);
  const override = matrixOverride();
  const tile = override && fits(override) ? override : MATRIX_TILES[Math.max(dc, dvc) as 64 | 128];
  if (!fits(tile))
    return {
      problem: `its tile needs ${matrixBytes(tile, dc, dvc)} bytes of workgroup memory and ${matrixThreads(tile)} invocations`,
    };
  return { tile, dc, dvc };
}
