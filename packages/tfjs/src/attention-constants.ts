import {
  type AttentionInputs,
  type AttentionParams,
  alibiBias,
  allowedKeyRange,
  defaultAlibiSlopes,
  type EntryMask,
  entryMask,
  isCausal,
} from "@te/core";
import * as tf from "@tensorflow/tfjs-core";

/**
 * The parts of an attention call that do not depend on q, k, v: which (query, key) pairs may meet and
 * the ALiBi bias, folded into one additive score bias (-inf where masked), and which query rows lie
 * inside their sequence. They are computed on the host (cheap, never differentiated) and uploaded
 * once per call. The score bias has the scores' full shape [b, h, sq, skv]: tfjs's cpu backend adds
 * equal shapes in a tight loop but broadcasts element by element, an order of magnitude slower.
 */
export interface AttentionConstants {
  /** float32 [b, h, sq, skv]: 0 or ALiBi where a pair may meet, -inf where masked; null when neither applies. */
  readonly scoreBias: tf.Tensor4D | null;
  /** bool [b, 1, sq]: query rows inside their sequence; null when every row is. */
  readonly rowValid: tf.Tensor3D | null;
}

/** Actual lengths per batch entry: from cu_seqlens where given, else every entry is full. */
export function sequenceLengths(cu: Int32Array | undefined, b: number, max: number): Int32Array {
  const lengths = new Int32Array(b).fill(max);
  if (cu) for (let i = 0; i < b; i++) lengths[i] = cu[i + 1] - cu[i];
  return lengths;
}

interface Geometry {
  readonly b: number;
  readonly h: number;
  readonly sq: number;
  readonly skv: number;
  readonly lq: Int32Array;
  readonly lk: Int32Array;
  /** Per batch entry: lengths, diagonal offset, causality and window (core's semantics). */
  readonly entries: readonly EntryMask[];
}

function geometryOf(inputs: AttentionInputs<unknown>, p: AttentionParams): Geometry {
  const lq = sequenceLengths(inputs.cuSeqlensQ, p.b, p.sq);
  const lk = sequenceLengths(inputs.cuSeqlensKv, p.b, p.skv);
  const entries = Array.from(lq, (l, bi) => entryMask(p, l, lk[bi]));
  return { b: p.b, h: p.h, sq: p.sq, skv: p.skv, lq, lk, entries };
}

const hasShortSequences = (g: Geometry): boolean => g.lq.some((l) => l < g.sq) || g.lk.some((l) => l < g.skv);

/** Whether any pair is masked out (else the mask part of the score bias is all zeros). */
function masks(inputs: AttentionInputs<unknown>, p: AttentionParams, g: Geometry): boolean {
  const [left, right] = p.window;
  return (
    isCausal(p.maskType) || p.maskType === "arbitrary" || left >= 0 || right >= 0 || hasShortSequences(g)
  );
}

function slopesOf(
  inputs: AttentionInputs<unknown>,
  p: AttentionParams,
  g: Geometry,
): (bi: number, hi: number) => number {
  const slopes = inputs.alibiSlopes ?? defaultAlibiSlopes(g.h);
  const perBatch = slopes.length === g.b * g.h;
  return (bi, hi) => slopes[perBatch ? bi * g.h + hi : hi];
}

/** Core's semantics (allowed key range, arbitrary mask, ALiBi term) written out per (b, h, i, j). */
function scoreBias(inputs: AttentionInputs<unknown>, p: AttentionParams, g: Geometry): tf.Tensor4D | null {
  const alibi = p.biasType === "alibi";
  if (!alibi && !masks(inputs, p, g)) return null;
  const mask = p.maskType === "arbitrary" ? inputs.attnMask : undefined;
  const slope = slopesOf(inputs, p, g);
  const out = new Float32Array(g.b * g.h * g.sq * g.skv).fill(Number.NEGATIVE_INFINITY);
  for (let bi = 0; bi < g.b; bi++) {
    const entry = g.entries[bi];
    for (let hi = 0; hi < g.h; hi++) {
      const maskBase = mask
        ? ((mask.shape[0] === 1 ? 0 : bi) * mask.shape[1] + (mask.shape[1] === 1 ? 0 : hi)) * g.sq
        : 0;
      for (let i = 0; i < g.sq; i++) {
        const [first, end] = allowedKeyRange(entry, i);
        const row = ((bi * g.h + hi) * g.sq + i) * g.skv;
        const maskRow = (maskBase + i) * g.skv;
        for (let j = first; j < end; j++) {
          if (mask && mask.data[maskRow + j] !== 0) continue;
          out[row + j] = alibi ? alibiBias(slope(bi, hi), entry, i, j) : 0;
        }
      }
    }
  }
  return tf.tensor4d(out, [g.b, g.h, g.sq, g.skv], "float32");
}

function validRows(g: Geometry): tf.Tensor3D | null {
  if (!g.lq.some((l) => l < g.sq)) return null;
  const out = new Uint8Array(g.b * g.sq);
  for (let bi = 0; bi < g.b; bi++) out.fill(1, bi * g.sq, bi * g.sq + g.lq[bi]);
  return tf.tensor3d(out, [g.b, 1, g.sq], "bool");
}

export function attentionConstants(inputs: AttentionInputs<unknown>, p: AttentionParams): AttentionConstants {
  const g = geometryOf(inputs, p);
  return { scoreBias: scoreBias(inputs, p, g), rowValid: validRows(g) };
}
