/**
 * A tuning override of the register-tiled programs' tiles, for benchmarks: in Node, TE_WEBGPU_FLASH_TILES holds
 * JSON such as {"forward": {"bq": 64, "bk": 32, "tm": 4, "sharedKv": false}, "dq": {"r": 32, "c": 32, "tm": 2},
 * "dkdv": {"r": 32, "c": 16, "tm": 2}, "matrix": {"bkv": 16, "sgw": 8, "kt": true, "rot": true, "onePass": true},
 * "matrix_dq": {"cols": 16, "sgw": 8}, "matrix_dkdv": {"cols": 32, "sgw": 4}}, any pass optional ("matrix*": the
 * forward and backward passes on subgroup matrices, matrix-tiles.ts and matrix-backward-tiles.ts). A tile that is malformed, needs more workgroup memory
 * or threads than the device has, or does not split its loads evenly is ignored: the tables' choice runs.
 */
import type { BackwardPass, BackwardTile } from "./backward-tiled-wgsl.js";
import { backwardBytes } from "./backward-tiled-wgsl.js";
import { type ForwardTile, forwardBytes } from "./forward-tiles.js";
import type { MatrixBackwardPass, MatrixBackwardTile } from "./matrix-backward-tiles.js";
import type { MatrixTile } from "./matrix-tiles.js";

const isPow2 = (n: unknown): n is number =>
  typeof n === "number" && Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

function overrides(): Record<string, Record<string, unknown>> | null {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const text = env?.TE_WEBGPU_FLASH_TILES;
  if (!text) return null;
  try {
    const parsed = JSON.parse(text);
    return parsed && typeof parsed === "object" ? parsed : null;
  } catch {
    return null;
  }
}

/** Whether every lane's share of a tile load of `rows` rows of `cls` columns is a whole number. */
const splits = (rows: number, cls: number, threads: number) => (rows * cls) % threads === 0;

export function forwardOverride(
  device: GPUDevice,
  dc: number,
  dvc: number,
  reduce: boolean,
): ForwardTile | null {
  const o = overrides()?.forward;
  if (!o) return null;
  const { bq, bk, tm, sharedKv } = o;
  if (!isPow2(bq) || !isPow2(bk) || !isPow2(tm) || bk < 16 || tm > bq || typeof sharedKv !== "boolean")
    return null;
  const tile: ForwardTile = { bq, bk, tm, sharedKv, why: "TE_WEBGPU_FLASH_TILES" };
  const threads = (4 * bq) / tm;
  const fits =
    threads <= device.limits.maxComputeInvocationsPerWorkgroup &&
    forwardBytes(tile, dc, dvc, reduce) <= device.limits.maxComputeWorkgroupStorageSize &&
    splits(bq, dc, threads) &&
    splits(bk, dc, threads) &&
    splits(bk, dvc, threads);
  return fits ? tile : null;
}

export function backwardOverride(
  device: GPUDevice,
  pass: BackwardPass,
  dc: number,
  dvc: number,
): BackwardTile | null {
  const o = overrides()?.[pass];
  if (!o) return null;
  const { r, c, tm } = o;
  if (!isPow2(r) || !isPow2(c) || !isPow2(tm) || c < 16 || tm > r) return null;
  const tile: BackwardTile = { r, c, tm, why: "TE_WEBGPU_FLASH_TILES" };
  const threads = (4 * r) / tm;
  const fits =
    threads <= device.limits.maxComputeInvocationsPerWorkgroup &&
    backwardBytes(tile, dc, dvc) <= device.limits.maxComputeWorkgroupStorageSize &&
    [r, c].every((n) => splits(n, dc, threads) && splits(n, dvc, threads));
  return fits ? tile : null;
}

/** The matrix forward's tile asked for, if well-formed (whether it fits the device is chooseMatrixTile's test). */
export function matrixOverride(): MatrixTile | null {
  const o = overrides()?.matrix;
  if (!o) return null;
  const {
    bkv,
    sgw,
    kt = false,
    rot = false,
    onePass = false,
    prefetch = false,
    words = false,
    doubleKv = false,
    pad = false,
  } = o;
  if (!isPow2(bkv) || bkv < 16 || bkv > 64 || !isPow2(sgw) || sgw > 16) return null;
  const flags = { kt, rot, onePass, prefetch, words, doubleKv, pad };
  if (!Object.values(flags).every((flag): flag is boolean => typeof flag === "boolean")) return null;
  return { bkv, sgw, ...(flags as Record<keyof typeof flags, boolean>), why: "TE_WEBGPU_FLASH_TILES" };
}

/** A matrix backward pass's tile asked for, if well-formed (chooseMatrixBackwardTile tests the fit). */
export function matrixBackwardOverride(pass: MatrixBackwardPass): MatrixBackwardTile | null {
  const o = overrides()?.[`matrix_${pass}`];
  if (!o) return null;
  const { cols, sgw, pad = false, words = false } = o;
  if (!isPow2(cols) || cols < 16 || cols > 64 || !isPow2(sgw) || sgw > 16) return null;
  if (typeof pad !== "boolean" || typeof words !== "boolean") return null;
  return { cols, sgw, pad, words, why: "TE_WEBGPU_FLASH_TILES" };
}
