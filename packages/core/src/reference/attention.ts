import { dropoutKeepRow } from "../dropout-rng.js";
import type { AttentionParams } from "../params.js";
import { alibiBias, allowedKeyRange } from "../semantics.js";
import type { Problem } from "./problem.js";
import { axpy, dot } from "./vector-ops.js";

/**
 * The float64 attention math on a canonical Problem, one query row at a time:
 *   S_ij = scale * q_i.k_j (+ bias, + ALiBi), masked entries excluded,
 *   lse_i = log(sum_j exp(S_ij) + exp(extra)), P_ij = exp(S_ij - lse_i),
 *   O_i = sum_j P_ij * Z_ij * v_j, with Z_ij = keep_ij / (1 - p) under dropout (else 1).
 * Backward uses the given O and lse (not recomputed ones), so context parallelism can pass global
 * statistics and get this chunk's share of the gradients.
 */

/** Scratch buffers for one row of scores. */
interface Row {
  readonly scores: Float64Array;
  readonly allowed: Uint8Array;
  /** Z_ij of the row: 1 without dropout, keep / (1 - p) with it. */
  readonly dropScale: Float64Array;
  readonly keep: Uint8Array;
}

const newRow = (skv: number): Row => ({
  scores: new Float64Array(skv),
  allowed: new Uint8Array(skv),
  dropScale: new Float64Array(skv).fill(1),
  keep: new Uint8Array(skv),
});

const kvHeadOf = (p: AttentionParams, hh: number): number => Math.floor(hh / (p.h / p.hg));

/** Fills the row's scores and allowed flags for (bi, hh, i); returns the allowed key range [lo, hi). */
function scoreRow(pr: Problem, bi: number, hh: number, i: number, row: Row): [number, number] {
  const { p } = pr;
  const { d, sq, skv } = p;
  const m = pr.masks[bi];
  const [lo, hi] = allowedKeyRange(m, i);
  row.allowed.fill(0);
  const qBase = ((bi * p.h + hh) * sq + i) * d;
  const kBase = (bi * p.hg + kvHeadOf(p, hh)) * skv * d;
  const mask = pr.attnMask;
  const maskBase = mask
    ? ((mask.shape[0] === 1 ? 0 : bi) * mask.shape[1] + (mask.shape[1] === 1 ? 0 : hh)) * sq * skv + i * skv
    : 0;
  const bias = pr.bias;
  const biasBase = bias ? bi * bias.strideB + hh * bias.strideH + i * skv : 0;
  const preScale = p.biasType === "pre_scale_bias";
  const slope = pr.slope?.(bi, hh);
  const { q, k } = pr;
  for (let j = lo; j < hi; j++) {
    if (mask && mask.data[maskBase + j] !== 0) continue;
    const qk = dot(q, qBase, k, kBase + j * d, d);
    let s: number;
    if (bias && preScale) s = p.softmaxScale * (qk + bias.values[biasBase + j]);
    else if (bias) s = p.softmaxScale * qk + bias.values[biasBase + j];
    else s = p.softmaxScale * qk;
    if (slope !== undefined) s += alibiBias(slope, m, i, j);
    row.scores[j] = s;
    row.allowed[j] = 1;
  }
  if (pr.dropout) {
    const keep = dropoutKeepRow(pr.dropout, bi, hh, i, skv, row.keep);
    const kept = 1 / (1 - pr.dropout.p);
    for (let j = 0; j < skv; j++) row.dropScale[j] = keep[j] ? kept : 0;
  }
  return [lo, hi];
}

/**
 * Optional rounding of intermediate values, for emulating reduced-precision kernels (FP8 attention
 * quantises P before P.V and dS before dS.K / dS.Q); identity when absent.
 */
export interface IntermediateRounding {
  /** Applied to each normalised probability P_ij before it multiplies v (and dO, for dv). */
  readonly probability?: (p: number) => number;
  /** Applied to each dS_ij before it multiplies k and q. */
  readonly scoreGradient?: (dS: number) => number;
}

/** Forward output: O canonical [b][h][sq][dv] and lse [b][h][sq] (-inf for rows with no normaliser). */
export interface ForwardValues {
  readonly o: Float64Array;
  readonly lse: Float64Array;
}

export function attentionForward(pr: Problem, rounding: IntermediateRounding = {}): ForwardValues {
  const { p } = pr;
  const { b, h, sq, skv, dv } = p;
  const o = new Float64Array(b * h * sq * dv);
  const lse = new Float64Array(b * h * sq).fill(Number.NEGATIVE_INFINITY);
  const row = newRow(skv);
  const { v } = pr;
  for (let bi = 0; bi < b; bi++) {
    for (let hh = 0; hh < h; hh++) {
      const vBase = (bi * p.hg + kvHeadOf(p, hh)) * skv * dv;
      const extra = pr.extraLogit?.(hh);
      for (let i = 0; i < pr.masks[bi].lq; i++) {
        const [lo, hi] = scoreRow(pr, bi, hh, i, row);
        let max = extra ?? Number.NEGATIVE_INFINITY;
        for (let j = lo; j < hi; j++) if (row.allowed[j] && row.scores[j] > max) max = row.scores[j];
        if (max === Number.NEGATIVE_INFINITY) continue; // nothing to attend to: o = 0, lse = -inf
        // scores become exp(s - max) in place; P = exp(s - max) / sum.
        let sum = extra === undefined ? 0 : Math.exp(extra - max);
        for (let j = lo; j < hi; j++) {
          if (!row.allowed[j]) continue;
          row.scores[j] = Math.exp(row.scores[j] - max);
          sum += row.scores[j];
        }
        const ri = (bi * h + hh) * sq + i;
        lse[ri] = max + Math.log(sum);
        const oBase = ri * dv;
        for (let j = lo; j < hi; j++) {
          if (!row.allowed[j]) continue;
          const prob = row.scores[j] / sum;
          const weight = (rounding.probability ? rounding.probability(prob) : prob) * row.dropScale[j];
          if (weight === 0) continue;
          axpy(weight, v, vBase + j * dv, o, oBase, dv);
        }
      }
    }
  }
  return { o, lse };
}

/** Backward output, canonical like the inputs; dbias in the bias's shape, dOffset [h]. */
export interface BackwardValues {
  readonly dq: Float64Array;
  readonly dk: Float64Array;
  readonly dv: Float64Array;
  readonly dbias: Float64Array | null;
  readonly dOffset: Float64Array | null;
}

/**
 * Gradients of sum(O * dO) from the given O [b][h][sq][dv] and lse [b][h][sq]:
 *   D_i = dO_i.O_i, dS_ij = P_ij (Z_ij dO_i.v_j - D_i),
 *   dq_i = scale sum_j dS_ij k_j, dk_j = scale sum_i dS_ij q_i, dv_j = sum_i P_ij Z_ij dO_i,
 *   dbias = dS (post-scale) or scale dS (pre-scale) summed over broadcast dims,
 *   d(extra logit of head h) = -sum_i exp(extra - lse_i) D_i.
 */
export function attentionBackward(
  pr: Problem,
  o: Float64Array,
  lse: Float64Array,
  dO: Float64Array,
  rounding: IntermediateRounding = {},
): BackwardValues {
  const { p } = pr;
  const { b, h, hg, d, dv, sq, skv } = p;
  const dq = new Float64Array(b * h * sq * d);
  const dk = new Float64Array(b * hg * skv * d);
  const dvOut = new Float64Array(b * hg * skv * dv);
  const bias = pr.bias;
  const dbias = bias && p.biasRequiresGrad ? new Float64Array(bias.values.length) : null;
  const dbiasFactor = p.biasType === "pre_scale_bias" ? p.softmaxScale : 1;
  const dOffset = p.softmaxType === "learnable" ? new Float64Array(h) : null;
  const row = newRow(skv);
  const scale = p.softmaxScale;
  const { q, k, v } = pr;
  for (let bi = 0; bi < b; bi++) {
    for (let hh = 0; hh < h; hh++) {
      const kvBase = bi * hg + kvHeadOf(p, hh);
      const kBase = kvBase * skv * d;
      const vBase = kvBase * skv * dv;
      const extra = pr.extraLogit?.(hh);
      for (let i = 0; i < pr.masks[bi].lq; i++) {
        const ri = (bi * h + hh) * sq + i;
        const rowLse = lse[ri];
        if (rowLse === Number.NEGATIVE_INFINITY) continue;
        const [lo, hi] = scoreRow(pr, bi, hh, i, row);
        const oBase = ri * dv;
        const qBase = ri * d;
        const dDot = dot(dO, oBase, o, oBase, dv);
        if (dOffset && extra !== undefined) dOffset[hh] -= Math.exp(extra - rowLse) * dDot;
        const biasBase = bias ? bi * bias.strideB + hh * bias.strideH + i * skv : 0;
        for (let j = lo; j < hi; j++) {
          if (!row.allowed[j]) continue;
          const prob = Math.exp(row.scores[j] - rowLse);
          const z = row.dropScale[j];
          const vOff = vBase + j * dv;
          const dPv = dot(dO, oBase, v, vOff, dv);
          const dS = prob * (z * dPv - dDot);
          const pz = (rounding.probability ? rounding.probability(prob) : prob) * z;
          axpy(pz, dO, oBase, dvOut, vOff, dv);
          const kOff = kBase + j * d;
          const g = scale * (rounding.scoreGradient ? rounding.scoreGradient(dS) : dS);
          axpy(g, k, kOff, dq, qBase, d);
          axpy(g, q, qBase, dk, kOff, d);
          if (dbias) dbias[biasBase + j] += dbiasFactor * dS;
        }
      }
    }
  }
  return { dq, dk, dv: dvOut, dbias, dOffset };
}
