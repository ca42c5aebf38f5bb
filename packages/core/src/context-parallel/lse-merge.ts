import type { Segment, TokenLayout } from "./token-layout.js";

/**
 * Merging partial attention results by their log-sum-exp (the online softmax): if rows of o₁ were
 * normalised over one set of keys (lse₁) and o₂ over a disjoint set (lse₂), the output over both is
 * o = e^(lse₁−lse) o₁ + e^(lse₂−lse) o₂ with lse = log(e^lse₁ + e^lse₂). TE applies this after every
 * ring step (flash_attn_fwd_out_correction / _softmax_lse_correction).
 */

/** log(e^a + e^b), exact for −∞ operands (a row that saw no key contributes nothing). */
export function logAddExp(a: number, b: number): number {
  const hi = Math.max(a, b);
  if (hi === Number.NEGATIVE_INFINITY) return hi;
  return hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/** The output and lse of one rank's local query rows, accumulated over blocks of keys, in float64. */
export interface RunningOutput {
  readonly layout: TokenLayout;
  readonly h: number;
  readonly dv: number;
  /** [rows, h, dv] in the layout's row order. */
  readonly o: Float64Array;
  /** [b, h, layout.length]; −∞ until a block gives a row keys. */
  readonly lse: Float64Array;
}

export function newRunningOutput(layout: TokenLayout, h: number, dv: number): RunningOutput {
  return {
    layout,
    h,
    dv,
    o: new Float64Array(layout.rows * h * dv),
    lse: new Float64Array(layout.b * h * layout.length).fill(Number.NEGATIVE_INFINITY),
  };
}

/**
 * Merges a block's output `o` and `lse` (laid out as `blockLayout`) into `acc`: each segment maps
 * block positions (`from`) to the accumulator's (`to`).
 */
export function mergeBlockInto(
  acc: RunningOutput,
  o: Float64Array,
  lse: Float64Array,
  blockLayout: TokenLayout,
  segments: readonly Segment[],
): void {
  const { layout, h, dv } = acc;
  for (const s of segments) {
    for (let hh = 0; hh < h; hh++) {
      for (let t = 0; t < s.count; t++) {
        const accRow = (s.batch * h + hh) * layout.length + s.to + t;
        const blockLse = lse[(s.batch * h + hh) * blockLayout.length + s.from + t];
        const merged = logAddExp(acc.lse[accRow], blockLse);
        if (merged === Number.NEGATIVE_INFINITY) continue;
        const keep = Math.exp(acc.lse[accRow] - merged);
        const add = Math.exp(blockLse - merged);
        acc.lse[accRow] = merged;
        const to = (layout.token(s.batch, s.to + t) * h + hh) * dv;
        const from = (blockLayout.token(s.batch, s.from + t) * h + hh) * dv;
        for (let e = 0; e < dv; e++) acc.o[to + e] = keep * acc.o[to + e] + add * o[from + e];
      }
    }
  }
}
