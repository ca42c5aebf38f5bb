import { isBottomRightMask, isCausal, type MaskType } from "./mask.js";
import type { AttentionParams } from "./params.js";

/**
 * The per-element semantics of attention (FORMAT.md, "Semantics"), shared by every backend, the
 * full-mask builder and the reference: which key j a query i may attend to, where the diagonal of a
 * batch entry sits, and the ALiBi term. Positions are within one batch entry (for thd: within one
 * sequence), never indices into packed storage.
 */

/** The masking geometry of one batch entry: its lengths, diagonal offset, causality and window. */
export interface EntryMask {
  /** Actual lengths of the entry's query and key sequences. */
  readonly lq: number;
  readonly lk: number;
  /** Query i's diagonal is key i + offset: lk - lq for bottom-right alignment, else 0. */
  readonly offset: number;
  readonly causal: boolean;
  /** Window bounds; -1 = unbounded. */
  readonly left: number;
  readonly right: number;
}

type MaskParams = Pick<AttentionParams, "maskType" | "window" | "bottomRightDiagonal">;

/**
 * Whether the diagonal is bottom-right aligned: the `*_bottom_right` masks always, `causal` and
 * `padding_causal` never, the other masks (no_mask, padding, arbitrary) as `bottomRightDiagonal` says.
 */
export function isBottomRightAligned(maskType: MaskType, bottomRightDiagonal: boolean): boolean {
  if (isBottomRightMask(maskType)) return true;
  if (isCausal(maskType)) return false;
  return bottomRightDiagonal;
}

/** The diagonal offset of an entry with lengths lq, lk (0 for top-left alignment). */
export function diagonalOffset(
  maskType: MaskType,
  bottomRightDiagonal: boolean,
  lq: number,
  lk: number,
): number {
  return isBottomRightAligned(maskType, bottomRightDiagonal) ? lk - lq : 0;
}

/** The geometry of one batch entry of a call. */
export function entryMask(p: MaskParams, lq: number, lk: number): EntryMask {
  return {
    lq,
    lk,
    offset: diagonalOffset(p.maskType, p.bottomRightDiagonal, lq, lk),
    causal: isCausal(p.maskType),
    left: p.window[0],
    right: p.window[1],
  };
}

/**
 * The keys query i may attend to, as the half-open range [lo, hi) (empty when lo >= hi): keys inside
 * the entry's length, at or before the diagonal for causal masks, and inside the window. An arbitrary
 * mask is applied on top of this by the caller.
 */
export function allowedKeyRange(m: EntryMask, i: number): [number, number] {
  if (i < 0 || i >= m.lq) return [0, 0];
  const diagonal = i + m.offset;
  let lo = 0;
  let hi = m.lk;
  if (m.causal) hi = Math.min(hi, diagonal + 1);
  if (m.left !== -1) lo = Math.max(lo, diagonal - m.left);
  if (m.right !== -1) hi = Math.min(hi, diagonal + m.right + 1);
  return lo < hi ? [lo, hi] : [0, 0];
}

/** Whether query i may attend to key j (before any arbitrary mask). */
export function isAllowed(m: EntryMask, i: number, j: number): boolean {
  const [lo, hi] = allowedKeyRange(m, i);
  return j >= lo && j < hi;
}

/**
 * TE's default ALiBi slopes (get_alibi) for n heads: with m = 2^floor(log2 n), 2^(-8k/m) for
 * k = 1..m, then, when m < n, 2^(-4k/m) for k = 1, 3, 5, ... until there are n slopes.
 */
export function defaultAlibiSlopes(n: number): Float64Array {
  const m = 2 ** Math.floor(Math.log2(n));
  const slopes = new Float64Array(n);
  for (let k = 1; k <= m; k++) slopes[k - 1] = 2 ** ((-8 * k) / m);
  for (let idx = m, k = 1; idx < n; idx++, k += 2) slopes[idx] = 2 ** ((-4 * k) / m);
  return slopes;
}

/** The ALiBi term added to the scaled score of (i, j): -slope * |i - j + offset|. */
export function alibiBias(slope: number, m: EntryMask, i: number, j: number): number {
  return 0 - slope * Math.abs(i - j + m.offset); // 0 - x: no -0 on the diagonal
}
