/**
 * Tiles of the register-tiled flash forward (forward-wgsl.ts). A workgroup owns BQ query rows; its threads form
 * groups of four lanes, each group owning TM consecutive rows: a lane holds TM x BK/4 scores of a key tile (keys
 * tx, tx + 4, ...) and TM x dv/4 outputs (vec4 columns tx, tx + 4, ...). So the workgroup has 4 * BQ / TM
 * threads. Q, K (and V, in their own array or K's) and P live in workgroup memory as vec4s; the first row of the
 * table whose arrays fit the device's workgroup memory for the call's head-dim classes is used.
 */
export interface ForwardTile {
  readonly bq: number;
  readonly bk: number;
  readonly tm: number;
  /** V reuses K's array (one more barrier per key tile, less memory). */
  readonly sharedKv: boolean;
  readonly why: string;
}

/** Head-dim classes of the forward: arrays are sized by them, loops over vec4 columns run to the call's dims. */
export const FORWARD_DIM_CLASSES = [64, 128, 256] as const;
export const forwardDimClass = (n: number): number => FORWARD_DIM_CLASSES.find((c) => c >= n) ?? n;

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

export function chooseForwardTile(
  d: number,
  dv: number,
  limitBytes: number,
  reduce: boolean,
): ForwardTile | null {
  const dc = forwardDimClass(d);
  const dvc = forwardDimClass(dv);
  return FORWARD_TILES.find((t) => forwardBytes(t, dc, dvc, reduce) <= limitBytes) ?? null;
}
