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
 * The parts of an attention call that do not depend on q, k, v: which (query, key) pairs may meet,
 * which query rows lie inside their sequence, and the ALiBi bias. They are computed on the host (they
 * are cheap, integer-valued and never differentiated) and uploaded once per call as tfjs constants.
 * All are batch-first: [b|1, h|1, sq, skv] for pairs, [b, 1, sq, 1] for rows.
 */
export interface AttentionConstants {
  /** bool: where a query may attend to a key; null when every pair may. */
  readonly allowed: tf.Tensor4D | null;
  /** bool: query rows inside their sequence; null when every row is. */
  readonly rowValid: tf.Tensor4D | null;
  /** float32 [b|1, h, sq, skv]: the ALiBi bias, or null. */
  readonly alibi: tf.Tensor4D | null;
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

function allowedPairs(inputs: AttentionInputs<unknown>, p: AttentionParams, g: Geometry): tf.Tensor4D | null {
  const [left, right] = p.window;
  const mask = p.maskType === "arbitrary" ? inputs.attnMask : undefined;
  if (!isCausal(p.maskType) && !mask && left < 0 && right < 0 && !hasShortSequences(g)) return null;
  const [mb, mh] = mask ? [mask.shape[0], mask.shape[1]] : [1, 1];
  const out = new Uint8Array(g.b * mh * g.sq * g.skv);
  for (let bi = 0; bi < g.b; bi++) {
    for (let hi = 0; hi < mh; hi++) {
      for (let i = 0; i < g.sq; i++) {
        const [first, end] = allowedKeyRange(g.entries[bi], i);
        const row = ((bi * mh + hi) * g.sq + i) * g.skv;
        const maskRow = (((mb === 1 ? 0 : bi) * mh + hi) * g.sq + i) * g.skv;
        for (let j = first; j < end; j++) if (!mask || mask.data[maskRow + j] === 0) out[row + j] = 1;
      }
    }
  }
  return tf.tensor4d(out, [g.b, mh, g.sq, g.skv], "bool");
}

function validRows(g: Geometry): tf.Tensor4D | null {
  if (!g.lq.some((l) => l < g.sq)) return null;
  const out = new Uint8Array(g.b * g.sq);
  for (let bi = 0; bi < g.b; bi++) out.fill(1, bi * g.sq, bi * g.sq + g.lq[bi]);
  return tf.tensor4d(out, [g.b, 1, g.sq, 1], "bool");
}

/** The ALiBi bias (core's alibiBias), per batch entry where slopes or diagonal offsets differ between entries. */
function alibiTensor(inputs: AttentionInputs<unknown>, p: AttentionParams, g: Geometry): tf.Tensor4D | null {
  if (p.biasType !== "alibi") return null;
  const slopes = inputs.alibiSlopes ?? defaultAlibiSlopes(g.h);
  const perBatchSlopes = slopes.length === g.b * g.h;
  const sameOffsets = g.entries.every((e) => e.offset === g.entries[0].offset);
  const nb = perBatchSlopes || !sameOffsets ? g.b : 1;
  const out = new Float32Array(nb * g.h * g.sq * g.skv);
  for (let bi = 0; bi < nb; bi++) {
    for (let hi = 0; hi < g.h; hi++) {
      const slope = slopes[perBatchSlopes ? bi * g.h + hi : hi];
      const base = (bi * g.h + hi) * g.sq * g.skv;
      for (let i = 0; i < g.sq; i++) {
        for (let j = 0; j < g.skv; j++) out[base + i * g.skv + j] = alibiBias(slope, g.entries[bi], i, j);
      }
    }
  }
  return tf.tensor4d(out, [nb, g.h, g.sq, g.skv], "float32");
}

export function attentionConstants(inputs: AttentionInputs<unknown>, p: AttentionParams): AttentionConstants {
  const g = geometryOf(inputs, p);
  return { allowed: allowedPairs(inputs, p, g), rowValid: validRows(g), alibi: alibiTensor(inputs, p, g) };
}

export function disposeConstants(c: AttentionConstants): void {
  c.allowed?.dispose();
  c.rowValid?.dispose();
  c.alibi?.dispose();
}
