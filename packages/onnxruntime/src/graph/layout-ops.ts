import type { GraphBuilder } from "../onnx/graph-builder.js";
import { ONNX_DTYPE } from "../onnx/onnx-proto.js";
import type { AttentionGraphConfig } from "./attention-config.js";

/**
 * Moving tensors between the caller's format (bshd, sbhd, thd) and the graph's working shape
 * [b, hg, g, s, d], where g = h / hg query heads share one k/v head. Keeping the group as its own
 * axis makes GQA/MQA a broadcast of MatMul over k/v (size-1 group axis) instead of copying k/v.
 */

/** Per-sequence offsets and lengths of a thd batch, as int64 values in the graph. */
export interface PackedSequences {
  /** [b + 1] cumulative lengths (int64). */
  readonly cu: string;
  /** [b] lengths (int64). */
  readonly lengths: string;
  /** Rows of the packed tensor (tq or tkv) and the padded length (sq or skv). */
  readonly tokens: number;
  readonly maxLength: number;
}

export function packedSequences(
  g: GraphBuilder,
  cuInt32: string,
  b: number,
  tokens: number,
  maxLength: number,
): PackedSequences {
  const cu = g.cast(cuInt32, ONNX_DTYPE.int64);
  const starts = g.op("Slice", [cu, g.int64s([0]), g.int64s([b]), g.int64s([0])]);
  const ends = g.op("Slice", [cu, g.int64s([1]), g.int64s([b + 1]), g.int64s([0])]);
  return { cu, lengths: g.sub(ends, starts), tokens, maxLength };
}

/** thd [t, H, D] → [b, s, H, D]: sequence b's rows, past its length filled with (masked) neighbouring rows. */
export function unpackThd(g: GraphBuilder, x: string, seq: PackedSequences, b: number): string {
  const starts = g.reshape(g.op("Slice", [seq.cu, g.int64s([0]), g.int64s([b]), g.int64s([0])]), [b, 1]);
  const positions = g.int64s(range(seq.maxLength), [1, seq.maxLength]);
  // Rows past a sequence's end are clamped into the tensor; the mask keeps them out of every result.
  const rows = g.op("Min", [g.add(starts, positions), g.int64(seq.tokens - 1)]);
  return g.op("Gather", [x, rows], { axis: 0 });
}

/** [b, s, H, D] → thd [t, H, D]: the valid rows of each sequence, concatenated. */
export function packThd(
  g: GraphBuilder,
  x: string,
  seq: PackedSequences,
  b: number,
  heads: number,
  dim: number,
): string {
  const tokens = g.int64s(range(seq.tokens), [seq.tokens, 1]);
  const ends = g.reshape(g.op("Slice", [seq.cu, g.int64s([1]), g.int64s([b + 1]), g.int64s([0])]), [1, b]);
  // The sequence a token belongs to is the number of sequence ends at or before it.
  const after = g.cast(g.op("GreaterOrEqual", [tokens, ends]), ONNX_DTYPE.int64);
  const batch = g.op("Min", [g.reduceSum(after, [1], false), g.int64(b - 1)]);
  const position = g.sub(g.reshape(tokens, [seq.tokens]), g.op("Gather", [seq.cu, batch], { axis: 0 }));
  const flatRow = g.add(g.mul(batch, g.int64(seq.maxLength)), position);
  const flat = g.reshape(x, [b * seq.maxLength, heads, dim]);
  return g.op("Gather", [flat, flatRow], { axis: 0 });
}

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Axis of batch and of sequence in a (non-thd) format's 4D tensor. */
const axesOf = (format: AttentionGraphConfig["format"]): { batch: number; seq: number } =>
  format === "sbhd" ? { batch: 1, seq: 0 } : { batch: 0, seq: 1 };

/** The batch and sequence dims in the format's order (thd: already unpacked to bshd). */
const leadingDims = (c: AttentionGraphConfig, s: number): number[] =>
  c.format === "sbhd" ? [s, c.b] : [c.b, s];

/**
 * A query-like tensor (q, o, dO; h heads) of the format to [b, hg, g, s, dim]. thd tensors must
 * have been unpacked first.
 */
export function queryTo5d(g: GraphBuilder, c: AttentionGraphConfig, x: string, dim: number): string {
  const { batch, seq } = axesOf(c.format);
  const split = g.reshape(x, [...leadingDims(c, c.sq), c.hg, c.h / c.hg, dim]);
  return g.transpose(split, [batch, 2, 3, seq, 4]);
}

/** A key-like tensor (k, v; hg heads) of the format to [b, hg, 1, s, dim]. */
export function keyTo5d(g: GraphBuilder, c: AttentionGraphConfig, x: string, dim: number): string {
  const { batch, seq } = axesOf(c.format);
  const split = g.reshape(x, [...leadingDims(c, c.skv), c.hg, 1, dim]);
  return g.transpose(split, [batch, 2, 3, seq, 4]);
}

/** [b, hg, g, s, dim] back to the format's 4D shape (bshd for thd, to be packed after) with hg*g heads. */
export function from5d(
  g: GraphBuilder,
  c: AttentionGraphConfig,
  x: string,
  s: number,
  heads: number,
  dim: number,
): string {
  const perm = c.format === "sbhd" ? [3, 0, 1, 2, 4] : [0, 3, 1, 2, 4];
  return g.reshape(g.transpose(x, perm), [...leadingDims(c, s), heads, dim]);
}
