import type { MaskTensor } from "./backend.js";
import { ArgumentError } from "./errors.js";
import type { AttentionParams } from "./params.js";
import { entryMask, isAllowed } from "./semantics.js";
import { type HostTensor, hostTensor } from "./tensor.js";

/** What the full mask depends on: the call's geometry and masking. */
export type FullMaskParams = Pick<
  AttentionParams,
  "b" | "sq" | "skv" | "maskType" | "window" | "bottomRightDiagonal"
>;

export interface FullMaskInputs {
  /** Actual lengths per batch entry (default: sq / skv for every entry). */
  readonly seqlensQ?: ArrayLike<number>;
  readonly seqlensKv?: ArrayLike<number>;
  /** The arbitrary mask, [b|1, h|1, sq, skv], 1 = masked out; applied on top of the rest. */
  readonly attnMask?: MaskTensor;
}

/**
 * TE's get_full_mask: the boolean mask [b, 1|h, sq, skv] (1 = masked out) a call applies, whatever
 * its mask type: positions past a sequence's length, above the (aligned) diagonal for causal masks,
 * outside the sliding window, and the arbitrary mask's 1s. It has h rows only when an arbitrary
 * mask with h heads is given.
 */
export function getFullMask(p: FullMaskParams, inputs: FullMaskInputs = {}): MaskTensor {
  const { b, sq, skv } = p;
  const lensQ = lengthsOrFull("seqlens_q", inputs.seqlensQ, b, sq);
  const lensKv = lengthsOrFull("seqlens_kv", inputs.seqlensKv, b, skv);
  const arbitrary = inputs.attnMask;
  if (p.maskType === "arbitrary" && !arbitrary) {
    throw new ArgumentError("attention_mask", 'a mask tensor for attn_mask_type "arbitrary"');
  }
  let mh = 1;
  if (arbitrary) {
    const [ab, ah, asq, askv] = arbitrary.shape;
    if ((ab !== 1 && ab !== b) || asq !== sq || askv !== skv) {
      throw new ArgumentError(
        "attention_mask",
        `shape [${b}|1, h|1, ${sq}, ${skv}]`,
        `[${arbitrary.shape.join(", ")}]`,
      );
    }
    mh = ah;
  }
  const data = new Uint8Array(b * mh * sq * skv);
  for (let bi = 0; bi < b; bi++) {
    const geometry = entryMask(p, lensQ[bi], lensKv[bi]);
    for (let hi = 0; hi < mh; hi++) {
      const base = (bi * mh + hi) * sq * skv;
      const abase = arbitrary ? ((arbitrary.shape[0] === 1 ? 0 : bi) * mh + hi) * sq * skv : 0;
      for (let i = 0; i < sq; i++) {
        for (let j = 0; j < skv; j++) {
          const e = i * skv + j;
          const masked =
            !isAllowed(geometry, i, j) || (arbitrary !== undefined && arbitrary.data[abase + e] !== 0);
          data[base + e] = masked ? 1 : 0;
        }
      }
    }
  }
  return { shape: [b, mh, sq, skv], data };
}

function lengthsOrFull(
  argument: string,
  lens: ArrayLike<number> | undefined,
  b: number,
  s: number,
): ArrayLike<number> {
  if (lens === undefined) return new Int32Array(b).fill(s);
  if (lens.length !== b) throw new ArgumentError(argument, `${b} lengths`, lens.length);
  for (let i = 0; i < b; i++) {
    if (!Number.isInteger(lens[i]) || lens[i] < 0 || lens[i] > s) {
      throw new ArgumentError(`${argument}[${i}]`, `an integer in [0, ${s}]`, lens[i]);
    }
  }
  return lens;
}

/**
 * An arbitrary mask as a post_scale_bias of the same shape (fp32): 0 where attended, -inf where
 * masked out. TE turns arbitrary masks into such a bias for backends that take a bias but not a mask.
 */
export function maskToPostScaleBias(mask: MaskTensor): HostTensor {
  const t = hostTensor("fp32", mask.shape);
  const out = t.data as Float32Array;
  for (let i = 0; i < mask.data.length; i++) out[i] = mask.data[i] !== 0 ? Number.NEGATIVE_INFINITY : 0;
  return t;
}
