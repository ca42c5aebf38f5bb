/**
 * Tile sizes of the flash programs. A workgroup has 64 threads; it keeps BQ query rows and BK key rows (plus
 * their dO/V rows) in workgroup memory, so the tile is the largest row of the table that fits the device's
 * `maxComputeWorkgroupStorageSize` for the call's head dims. Each row says why it is there.
 */
export const WORKGROUP_SIZE = 64;
/** Head dims above this are not compiled: per-thread accumulators hold ceil(dim / threads per row) floats. */
export const MAX_HEAD_DIM = 256;

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

/** Workgroup bytes of each pass for head dims d (q, k) and dv (v, o). */
export const PASS_BYTES = {
  forward: (t: Tile, d: number, dv: number): number => 4 * (t.bq * d + t.bk * Math.max(d, dv) + t.bq * t.bk + 3 * t.bq),
  dkdv: (t: Tile, d: number, dv: number): number => 4 * (t.bk * (d + dv) + t.bq * (d + dv) + 2 * t.bq * t.bk + 2 * t.bq),
  dq: (t: Tile, d: number, dv: number): number => 4 * (t.bk * (d + dv) + t.bq * (d + dv) + t.bq * t.bk + 2 * t.bq),
} as const;

export type FlashPass = keyof typeof PASS_BYTES;

/** The first tile of the table whose workgroup memory fits, or null. */
export function chooseTile(pass: FlashPass, d: number, dv: number, limitBytes: number): Tile | null {
  return TILES.find((t) => PASS_BYTES[pass](t, d, dv) <= limitBytes) ?? null;
}
