import { ArgumentError } from "./errors.js";
import type { AttentionParams } from "./params.js";
import { alibiBias, defaultAlibiSlopes, entryMask } from "./semantics.js";
import { type HostTensor, hostTensor } from "./tensor.js";

export type AlibiParams = Pick<
  AttentionParams,
  "b" | "h" | "sq" | "skv" | "maskType" | "window" | "bottomRightDiagonal"
>;

export interface AlibiInputs {
  /** Custom slopes, [h] or [b, h] flattened (default: TE's default slopes for h heads). */
  readonly slopes?: ArrayLike<number>;
  /** Actual lengths per entry: bottom-right alignment puts the diagonal at lk - lq of each entry. */
  readonly seqlensQ?: ArrayLike<number>;
  readonly seqlensKv?: ArrayLike<number>;
}

/**
 * TE's get_alibi: the ALiBi bias [1|b, h, sq, skv] (fp64) added to the scaled scores,
 * -slope * |i - j + offset| with the diagonal offset of each entry. The batch dim is b when the
 * slopes are per batch entry ([b, h]) or the lengths differ between entries, else 1.
 */
export function alibiBiasTensor(p: AlibiParams, inputs: AlibiInputs = {}): HostTensor {
  const { b, h, sq, skv } = p;
  const slopes = inputs.slopes ?? defaultAlibiSlopes(h);
  let perBatch: boolean;
  if (slopes.length === h) perBatch = false;
  else if (slopes.length === b * h) perBatch = true;
  else throw new ArgumentError("alibi_slopes", `${h} slopes ([h]) or ${b * h} ([b, h])`, slopes.length);
  const lensQ = inputs.seqlensQ ?? new Int32Array(b).fill(sq);
  const lensKv = inputs.seqlensKv ?? new Int32Array(b).fill(skv);
  if (lensQ.length !== b) throw new ArgumentError("seqlens_q", `${b} lengths`, lensQ.length);
  if (lensKv.length !== b) throw new ArgumentError("seqlens_kv", `${b} lengths`, lensKv.length);
  let sameLengths = true;
  for (let bi = 1; bi < b; bi++) sameLengths &&= lensQ[bi] === lensQ[0] && lensKv[bi] === lensKv[0];
  const bb = perBatch || !sameLengths ? b : 1;
  const out = hostTensor("fp64", [bb, h, sq, skv]);
  const data = out.data as Float64Array;
  for (let bi = 0; bi < bb; bi++) {
    const geometry = entryMask(p, lensQ[bi], lensKv[bi]);
    for (let hi = 0; hi < h; hi++) {
      const slope = slopes[perBatch ? bi * h + hi : hi];
      const base = (bi * h + hi) * sq * skv;
      for (let i = 0; i < sq; i++) {
        for (let j = 0; j < skv; j++) data[base + i * skv + j] = alibiBias(slope, geometry, i, j);
      }
    }
  }
  return out;
}
