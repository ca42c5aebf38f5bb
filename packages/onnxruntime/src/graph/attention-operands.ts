import { biasDims, defaultAlibiSlopes } from "@te/core";
import type { GraphBuilder } from "../onnx/graph-builder.js";
import { ONNX_DTYPE, type OnnxDType } from "../onnx/onnx-proto.js";
import { type AttentionGraphConfig, GRAPH_NAMES as N, usesSeqlens } from "./attention-config.js";
import { keyTo5d, type PackedSequences, packedSequences, queryTo5d, range, unpackThd } from "./layout-ops.js";

/**
 * The graph inputs every attention graph (forward, backward, fused) declares, and the working values
 * built from them: q/k/v in the [b, hg, g, s, d] working shape, the mask of allowed (query, key)
 * pairs, biases and the extra softmax logit. All math is fp32.
 */
export interface AttentionOperands {
  /** [b, hg, g, sq, d] */
  readonly q5: string;
  /** [b, hg, 1, skv, d] */
  readonly k5: string;
  /** [b, hg, 1, skv, dv] */
  readonly v5: string;
  /** bool, broadcastable to [b, hg, g, sq, skv]; absent when every pair is allowed. */
  readonly allowed?: string;
  /** fp32 additive terms of the scores, broadcastable to [b, hg, g, sq, skv]. */
  readonly bias5?: string;
  readonly alibi5?: string;
  /** The extra logit that joins each row's normaliser: 0 (off_by_one) or the per-head offset [1, hg, g, 1, 1]. */
  readonly extraLogit?: string;
  /** bool [b, 1, 1, sq, 1]: whether query row i is inside its sequence (i < lq); absent without lengths. */
  readonly queryRowValid?: string;
  /** The learnable softmax offset input [h], as declared. */
  readonly softmaxOffset?: string;
  readonly seqQ?: PackedSequences;
  readonly seqKv?: PackedSequences;
}

export const onnxDTypeOf = (c: AttentionGraphConfig): OnnxDType => (c.dtype === "fp16" ? "float16" : "float");

/** Declares a tensor input of the storage dtype and casts it to fp32 when stored in fp16. */
export function floatInput(
  g: GraphBuilder,
  c: AttentionGraphConfig,
  name: string,
  shape: readonly number[],
): string {
  const x = g.input(name, onnxDTypeOf(c), shape);
  return c.dtype === "fp16" ? g.cast(x, ONNX_DTYPE.float) : x;
}

/** Shape of a q-like (heads = h) or kv-like tensor in the config's format. */
export function formatShape(
  c: AttentionGraphConfig,
  which: "q" | "kv",
  heads: number,
  dim: number,
): number[] {
  const s = which === "q" ? c.sq : c.skv;
  const t = which === "q" ? c.tq : c.tkv;
  if (c.format === "thd") return [t, heads, dim];
  return c.format === "sbhd" ? [s, c.b, heads, dim] : [c.b, s, heads, dim];
}

/** The packed-sequence bookkeeping, when the config needs sequence lengths. */
export function declareSequences(
  g: GraphBuilder,
  c: AttentionGraphConfig,
): { seqQ?: PackedSequences; seqKv?: PackedSequences } {
  if (!usesSeqlens(c)) return {};
  const cuQ = g.input(N.cuSeqlensQ, "int32", [c.b + 1]);
  const cuKv = g.input(N.cuSeqlensKv, "int32", [c.b + 1]);
  return {
    seqQ: packedSequences(g, cuQ, c.b, c.tq, c.sq),
    seqKv: packedSequences(g, cuKv, c.b, c.tkv, c.skv),
  };
}

/** A q-like input (q, o, dO) of the format, to [b, hg, g, sq, dim]. */
export function queryInput(
  g: GraphBuilder,
  c: AttentionGraphConfig,
  name: string,
  dim: number,
  seqQ?: PackedSequences,
): string {
  const x = floatInput(g, c, name, formatShape(c, "q", c.h, dim));
  return queryTo5d(g, c, c.format === "thd" ? unpackThd(g, x, seqQ!, c.b) : x, dim);
}

/** A key-like input (k, v) of the format, to [b, hg, 1, skv, dim]. */
function keyInput(
  g: GraphBuilder,
  c: AttentionGraphConfig,
  name: string,
  dim: number,
  seqKv?: PackedSequences,
): string {
  const x = floatInput(g, c, name, formatShape(c, "kv", c.hg, dim));
  return keyTo5d(g, c, c.format === "thd" ? unpackThd(g, x, seqKv!, c.b) : x, dim);
}

/** [B, H, ...] → [B, hg, g, ...] for H = h, [B, 1, 1, ...] for H = 1. */
export function headsTo5d(
  g: GraphBuilder,
  c: AttentionGraphConfig,
  x: string,
  shape: readonly number[],
): string {
  const [lead, heads, ...rest] = shape;
  return g.reshape(x, heads === 1 ? [lead, 1, 1, ...rest] : [lead, c.hg, c.h / c.hg, ...rest]);
}

/**
 * Which (query, key) pairs are allowed, from positions: i < lq, j < lk, the causal diagonal and the
 * sliding window, with off = lk - lq on a bottom-right diagonal. Also returns i + off - j for ALiBi.
 */
function positions(
  g: GraphBuilder,
  c: AttentionGraphConfig,
  seqQ?: PackedSequences,
  seqKv?: PackedSequences,
) {
  const i = g.int64s(range(c.sq), [c.sq, 1]);
  const j = g.int64s(range(c.skv), [1, c.skv]);
  const conditions: string[] = [];
  let offset: string | undefined;
  let rowValid: string | undefined;
  if (seqQ && seqKv) {
    const lq = g.reshape(seqQ.lengths, [c.b, 1, 1]);
    const lk = g.reshape(seqKv.lengths, [c.b, 1, 1]);
    rowValid = g.reshape(g.op("Less", [i, lq]), [c.b, 1, 1, c.sq, 1]);
    conditions.push(g.op("Less", [i, lq]), g.op("Less", [j, lk]));
    if (c.bottomRight) offset = g.sub(lk, lq);
  } else if (c.bottomRight && c.skv !== c.sq) {
    offset = g.int64(c.skv - c.sq);
  }
  const diagonal = offset === undefined ? i : g.add(i, offset);
  const [left, right] = c.window;
  const causal = c.maskType.includes("causal");
  if (causal) conditions.push(g.op("LessOrEqual", [j, diagonal]));
  if (left !== -1) conditions.push(g.op("GreaterOrEqual", [j, g.sub(diagonal, g.int64(left))]));
  if (right !== -1 && !causal) conditions.push(g.op("LessOrEqual", [j, g.add(diagonal, g.int64(right))]));
  const allowed = conditions.length === 0 ? undefined : conditions.reduce((a, b) => g.and(a, b));
  return { allowed, rowValid, distance: () => g.sub(diagonal, j) };
}

/** Declares every input the config calls for and builds the working values of attention. */
export function attentionOperands(g: GraphBuilder, c: AttentionGraphConfig): AttentionOperands {
  const { seqQ, seqKv } = declareSequences(g, c);
  const q5 = queryInput(g, c, N.q, c.d, seqQ);
  const k = keyInput(g, c, N.k, c.d, seqKv);
  const v = keyInput(g, c, N.v, c.dv, seqKv);

  let bias5: string | undefined;
  if ((c.biasType === "pre_scale_bias" || c.biasType === "post_scale_bias") && c.biasShape) {
    const shape = biasDims(c.biasShape, c.b, c.h, c.sq, c.skv);
    bias5 = headsTo5d(g, c, floatInput(g, c, N.bias, shape), shape);
  }

  const pos = positions(g, c, seqQ, seqKv);
  // [sq, skv] or [b, sq, skv] (per-sequence lengths) → [1|b, 1, 1, sq, skv]
  const pairs5d = (x: string): string => g.reshape(x, [-1, 1, 1, c.sq, c.skv]);
  let allowed = pos.allowed === undefined ? undefined : pairs5d(pos.allowed);
  if (c.maskBroadcast) {
    const shape = [...c.maskBroadcast, c.sq, c.skv];
    const maskedOut = headsTo5d(g, c, g.input(N.attnMask, "bool", shape), shape);
    const fromMask = g.op("Not", [maskedOut]);
    allowed = allowed === undefined ? fromMask : g.and(allowed, fromMask);
  }

  let alibi5: string | undefined;
  if (c.alibiSlopes) {
    const distance = pairs5d(g.op("Abs", [g.cast(pos.distance(), ONNX_DTYPE.float)]));
    const perBatch = c.alibiSlopes === "bh";
    const shape = perBatch ? [c.b, c.h] : [c.h];
    const values = c.alibiSlopes === "default" ? Array.from(defaultAlibiSlopes(c.h)) : c.alibiSlopeValues;
    const given = values ? g.floats(values, shape) : g.input(N.alibiSlopes, "float", shape);
    const slopes = g.reshape(given, [perBatch ? c.b : 1, c.hg, c.h / c.hg, 1, 1]);
    alibi5 = g.op("Neg", [g.mul(slopes, distance)]);
  }

  let extraLogit: string | undefined;
  let softmaxOffset: string | undefined;
  if (c.softmaxType === "off_by_one") extraLogit = g.float(0);
  if (c.softmaxType === "learnable") {
    softmaxOffset = g.input(N.softmaxOffset, "float", [c.h]);
    extraLogit = g.reshape(softmaxOffset, [1, c.hg, c.h / c.hg, 1, 1]);
  }

  return {
    q5,
    k5: k,
    v5: v,
    allowed,
    bias5,
    alibi5,
    extraLogit,
    softmaxOffset,
    queryRowValid: pos.rowValid,
    seqQ,
    seqKv,
  };
}

/** The terms added to scale·QK: scale·bias (pre_scale_bias), bias (post_scale_bias) and ALiBi. */
export function additiveTerms(
  g: GraphBuilder,
  c: AttentionGraphConfig,
  x: AttentionOperands,
): string | undefined {
  let terms: string | undefined;
  if (x.bias5) terms = c.biasType === "pre_scale_bias" ? g.mul(x.bias5, g.float(c.scale)) : x.bias5;
  if (x.alibi5) terms = terms === undefined ? x.alibi5 : g.add(terms, x.alibi5);
  return terms;
}

/** Sets disallowed (query, key) pairs of `scores` to -inf. */
export function applyMask(g: GraphBuilder, x: AttentionOperands, scores: string): string {
  if (x.allowed === undefined) return scores;
  // Adding 0/-inf made at the mask's (broadcast) shape: ORT's Add broadcasts far faster than a Where
  // over the full score shape.
  return g.add(scores, g.where(x.allowed, g.float(0), g.float(Number.NEGATIVE_INFINITY)));
}

/** Whether any score term or mask varies by head (then per-head tensors are [.., h, sq, skv]). */
export const termsVaryByHead = (c: AttentionGraphConfig): boolean =>
  c.alibiSlopes !== null ||
  ((c.biasType === "pre_scale_bias" || c.biasType === "post_scale_bias") && c.biasShape?.[1] === "h") ||
  (c.maskBroadcast !== null && c.maskBroadcast[1] !== 1);

/** Transposes the last two axes of a 5D working tensor. */
export const SWAP_LAST = [0, 1, 2, 4, 3];

/** The scaled, biased scores [b, hg, g, sq, skv] with disallowed pairs at -inf. */
export function maskedScores(g: GraphBuilder, c: AttentionGraphConfig, x: AttentionOperands): string {
  // Scaling q (b·h·sq·d values) costs less than scaling the scores (b·h·sq·skv).
  const scaled = g.matmul(g.mul(x.q5, g.float(c.scale)), g.transpose(x.k5, SWAP_LAST));
  const terms = additiveTerms(g, c, x);
  return applyMask(g, x, terms === undefined ? scaled : g.add(scaled, terms));
}
