/**
 * Tiles of the register-tiled flash forward (forward-wgsl.ts). A workgroup owns BQ query rows; its threads form
 * groups of four lanes, each group owning TM consecutive rows: a lane holds TM x BK/4 scores of a key tile (keys
 * tx, tx + 4, ...) and TM x dv/4 outputs (vec4 columns tx, tx + 4, ...). So the workgroup has 4 * BQ / TM
 * threads. Q, K (and V, in their own array or K's) and P live in workgroup memory as vec4s; the first row of the
 * table whose arrays fit the device's workgroup memory for the call's head-dim classes is used.
 */
import { adapterInfoOf } from "../device.js";

export interface ForwardTile {
  readonly bq: number;
  readonly bk: number;
  readonly tm: number;
  /** V reuses K's array (one more barrier per key tile, less memory). */
  readonly sharedKv: boolean;
  readonly why: string;
}

/**
 * How the register-tiled programs pick tiles on a device. "throughput" on GPUs. "compile" on CPU adapters
 * (SwiftShader, llvmpipe, WARP), where compiling a pipeline takes seconds and dominates every call: two head-dim
 * classes and tiles of one row per lane group only, whose unrolled code is a fraction of the others', so that
 * test suites compile few and small pipelines. Both run the same generated code with other constants.
 * TE_WEBGPU_FLASH_PROFILE (Node) forces one, so that a CPU adapter can check the GPUs' programs.
 */
export type TileProfile = "throughput" | "compile";

export function tileProfile(device: GPUDevice): TileProfile {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const forced = env?.TE_WEBGPU_FLASH_PROFILE;
  if (forced === "throughput" || forced === "compile") return forced;
  const info = adapterInfoOf(device);
  const names = `${info.architecture ?? ""} ${info.device ?? ""} ${info.description ?? ""}`;
  return info.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|microsoft basic render|warp/i.test(names)
    ? "compile"
    : "throughput";
}

/** Head-dim classes: arrays are sized by them, loops over vec4 columns run to the call's dims. */
const DIM_CLASSES: Record<TileProfile, readonly number[]> = {
  throughput: [64, 128, 256],
  compile: [64, 256],
};
export const dimClass = (n: number, profile: TileProfile = "throughput"): number =>
  DIM_CLASSES[profile].find((c) => c >= n) ?? n;

export const FORWARD_TILES: readonly ForwardTile[] = [
  {
    bq: 64,
    bk: 32,
    tm: 4,
    sharedKv: false,
    why: "head dims up to 64 with 48 KiB: 32 keys per round of barriers",
  },
  { bq: 64, bk: 16, tm: 4, sharedKv: false, why: "head dims up to 64 with 32 KiB" },
  { bq: 32, bk: 16, tm: 2, sharedKv: false, why: "head dims up to 128 with 48 KiB" },
  { bq: 32, bk: 16, tm: 2, sharedKv: true, why: "head dims up to 128 with 32 KiB; up to 64 within 16 KiB" },
  { bq: 16, bk: 16, tm: 1, sharedKv: true, why: "head dims up to 256 with 48 KiB" },
  {
    bq: 8,
    bk: 16,
    tm: 1,
    sharedKv: true,
    why: "the smallest: head dims up to 256 with 32 KiB, up to 128 within 16 KiB",
  },
];

/** Workgroup bytes of a forward tile for head-dim classes dc (q, k) and dvc (v, o); `reduce`: no subgroups. */
export function forwardBytes(t: ForwardTile, dc: number, dvc: number, reduce: boolean): number {
  const kv = t.sharedKv ? t.bk * Math.max(dc, dvc) : t.bk * (dc + dvc);
  return 4 * (t.bq * dc + kv + t.bq * t.bk + (reduce ? 4 * t.bq : 0));
}

export interface ForwardChoice {
  readonly tile: ForwardTile;
  /** Head-dim classes of q/k and of v/o. */
  readonly dc: number;
  readonly dvc: number;
}

/** The first tile that fits (the compile profile falls back to the throughput rows where none of its fits). */
export function chooseForwardTile(
  d: number,
  dv: number,
  limitBytes: number,
  reduce: boolean,
  profile: TileProfile = "throughput",
): ForwardChoice | null {
  const dc = dimClass(d, profile);
  const dvc = dimClass(dv, profile);
  const fits = (t: ForwardTile) => forwardBytes(t, dc, dvc, reduce) <= limitBytes;
  const tile = FORWARD_TILES.find((t) => (profile === "throughput" || t.tm === 1) && fits(t));
  if (tile) return { tile, dc, dvc };
  return profile === "compile" ? chooseForwardTile(d, dv, limitBytes, reduce, "throughput") : null;
}
