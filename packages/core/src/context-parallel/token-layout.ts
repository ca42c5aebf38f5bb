import type { HostArray } from "../tensor.js";

/**
 * Where each (sequence, position) token of a batch lives in a tensor's rows, for the three formats:
 * bshd rows are b-major, sbhd rows s-major, thd rows packed at per-sequence offsets. With it one
 * piece of code moves query/key rows between a rank's tensors and its blocks in every format.
 */
export interface TokenLayout {
  readonly b: number;
  /** Positions per sequence the lse of this layout has ([b, h, length]): sq for bshd/sbhd, max_seqlen for thd. */
  readonly length: number;
  /** Rows of the tensor (b·s, or total packed tokens for thd). */
  readonly rows: number;
  /** Row of token `pos` of sequence `batch`. */
  token(batch: number, pos: number): number;
}

export function bshdLayout(b: number, s: number): TokenLayout {
  return { b, length: s, rows: b * s, token: (batch, pos) => batch * s + pos };
}

export function sbhdLayout(b: number, s: number): TokenLayout {
  return { b, length: s, rows: b * s, token: (batch, pos) => pos * b + batch };
}

/** Packed sequences: sequence i starts at row offsets[i]; lse positions up to `length`. */
export function thdLayout(offsets: Int32Array, length: number): TokenLayout {
  const b = offsets.length - 1;
  return { b, length, rows: offsets[b], token: (batch, pos) => offsets[batch] + pos };
}

/** `count` consecutive positions of sequence `batch`: from position `from` of one layout to `to` of another. */
export interface Segment {
  readonly batch: number;
  readonly from: number;
  readonly to: number;
  readonly count: number;
}

/**
 * Copies the rows named by `segments` (each row `width` elements: heads × head dim) from `src` laid
 * out as `srcLayout` into a new array laid out as `dstLayout`; rows no segment names stay zero.
 */
export function gatherTokens<A extends HostArray>(
  src: A,
  srcLayout: TokenLayout,
  dstLayout: TokenLayout,
  segments: readonly Segment[],
  width: number,
): A {
  const Ctor = src.constructor as new (n: number) => A;
  const out = new Ctor(dstLayout.rows * width);
  for (const s of segments) {
    for (let t = 0; t < s.count; t++) {
      const from = srcLayout.token(s.batch, s.from + t) * width;
      out.set(src.subarray(from, from + width), dstLayout.token(s.batch, s.to + t) * width);
    }
  }
  return out;
}

/** Adds the rows named by `segments` of `src` (laid out as `srcLayout`) into `dst` (laid out as `dstLayout`). */
export function scatterAddTokens(
  dst: Float64Array,
  dstLayout: TokenLayout,
  src: Float64Array,
  srcLayout: TokenLayout,
  segments: readonly Segment[],
  width: number,
): void {
  for (const s of segments) {
    for (let t = 0; t < s.count; t++) {
      const from = srcLayout.token(s.batch, s.from + t) * width;
      const to = dstLayout.token(s.batch, s.to + t) * width;
      for (let e = 0; e < width; e++) dst[to + e] += src[from + e];
    }
  }
}

/** Gathers lse rows ([b, h, length] of each layout) named by `segments`; rows no segment names are -inf. */
export function gatherLse(
  src: Float64Array,
  srcLayout: TokenLayout,
  dstLayout: TokenLayout,
  segments: readonly Segment[],
  h: number,
): Float64Array {
  const out = new Float64Array(dstLayout.b * h * dstLayout.length).fill(Number.NEGATIVE_INFINITY);
  for (const s of segments) {
    for (let hh = 0; hh < h; hh++) {
      const from = (s.batch * h + hh) * srcLayout.length + s.from;
      out.set(src.subarray(from, from + s.count), (s.batch * h + hh) * dstLayout.length + s.to);
    }
  }
  return out;
}
