import type { SequenceFormat } from "./load-balance.js";

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
  readonly format: SequenceFormat;
  readonly b: number;
  readonly h: number;
  readonly dv: number;
  /** Local query rows. */
  readonly s: number;
  /** In the format's order, head dim dv: [b, s, h, dv] or [s, b, h, dv]. */
  readonly o: Float64Array;
  /** [b, h, s]. */
  readonly lse: Float64Array;
}

export function newRunningOutput(
  format: SequenceFormat,
  b: number,
  h: number,
  dv: number,
  s: number,
): RunningOutput {
  return {
    format,
    b,
    h,
    dv,
    s,
    o: new Float64Array(b * s * h * dv),
    lse: new Float64Array(b * h * s).fill(Number.NEGATIVE_INFINITY),
  };
}

/** Offset of row (batch, seq) head `head` of an output whose sequence has `s` rows. */
export function outputRowOffset(
  format: SequenceFormat,
  b: number,
  s: number,
  h: number,
  dv: number,
  batch: number,
  seq: number,
  head: number,
): number {
  const token = format === "bshd" ? batch * s + seq : seq * b + batch;
  return (token * h + head) * dv;
}

/**
 * Merges a block's output `o` ([b, rows, h, dv] in the format's order) and `lse` ([b, h, rows]),
 * computed for local query rows [rowStart, rowStart + rows), into `acc`.
 */
export function mergeBlockInto(
  acc: RunningOutput,
  o: Float64Array,
  lse: Float64Array,
  rowStart: number,
  rows: number,
): void {
  const { format, b, h, dv, s } = acc;
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      for (let r = 0; r < rows; r++) {
        const accRow = (bi * h + hi) * s + rowStart + r;
        const blockLse = lse[(bi * h + hi) * rows + r];
        const merged = logAddExp(acc.lse[accRow], blockLse);
        if (merged === Number.NEGATIVE_INFINITY) continue;
        const keep = Math.exp(acc.lse[accRow] - merged);
        const add = Math.exp(blockLse - merged);
        acc.lse[accRow] = merged;
        const to = outputRowOffset(format, b, s, h, dv, bi, rowStart + r, hi);
        const from = outputRowOffset(format, b, rows, h, dv, bi, r, hi);
        for (let e = 0; e < dv; e++) acc.o[to + e] = keep * acc.o[to + e] + add * o[from + e];
      }
    }
  }
}
