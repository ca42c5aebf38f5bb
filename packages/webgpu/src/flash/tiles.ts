/**
 * Tile sizes of the flash backward programs (the forward has its own, forward-tiles.ts). A workgroup has 64 threads; it keeps BQ query rows and BK key rows (plus
 * their dO/V rows) in workgroup memory, so the tile is the largest row of the table that fits the device's
 * `maxComputeWorkgroupStorageSize` for the call's head dims. Each row says why it is there.
 */
export const WORKGROUP_SIZE = 64;
/** Head dims above this are not compiled: per-thread accumulators hold ceil(dim / threads per row) floats. */
export const MAX_HEAD_DIM = 256;

/**
 * Workgroup arrays and per-thread accumulators are sized for a head-dim class; loops run to the call's actual
 * dims (uniforms), so one pipeline per class serves every head dim up to it. Two classes only: SwiftShader (the
 * CPU driver of CI) spends 5-15 s compiling each of the three big flash pipelines of a class, most of it in the
 * online-softmax and P.V sections (measured by bisecting the WGSL), so every extra class costs ~40 s of tests.
 */
export const HEAD_DIM_CLASSES = [64, 256] as const;
export const headDimClass = (n: number): number => HEAD_DIM_CLASSES.find((c) => c >= n) ?? n;

export interface Tile {
  readonly bq: number;
  readonly bk: number;
  readonly why: string;
}

export const TILES: readonly Tile[] = [
  { bq: 16, bk: 32, why: "head dims up to 64 with 32 KiB: long key tiles amortise the barriers per tile" },
  { bq: 16, bk: 16, why: "head dims up to 64 within WebGPU's default 16 KiB" },
  { bq: 8, bk: 16, why: "head dims around 128" },
  { bq: 8, bk: 8, why: "head dims up to 256 with 32 KiB" },
  { bq: 4, bk: 8, why: "head dim 256 backward with 32 KiB" },
  { bq: 4, bk: 4, why: "the smallest tile: large head dims within 16 KiB" },
];

/** Workgroup bytes of each pass for head dims d (q, k) and dv (v, o); key/value rows carry one float of padding. */
export const PASS_BYTES = {
  dkdv: (t: Tile, d: number, dv: number): number =>
    4 * (t.bk * (d + dv + 2) + t.bq * (d + dv) + 2 * t.bq * t.bk + 2 * t.bq),
  dq: (t: Tile, d: number, dv: number): number =>
    4 * (t.bk * (d + dv + 2) + t.bq * (d + dv) + t.bq * t.bk + 2 * t.bq),
} as const;

export type FlashPass = keyof typeof PASS_BYTES;

/** The first tile of the table whose workgroup memory fits, or null. */
export function chooseTile(pass: FlashPass, d: number, dv: number, limitBytes: number): Tile | null {
  const dc = headDimClass(d);
  const dvc = headDimClass(dv);
  return TILES.find((t) => PASS_BYTES[pass](t, dc, dvc) <= limitBytes) ?? null;
}
