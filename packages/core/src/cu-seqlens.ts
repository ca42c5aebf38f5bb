import type { MaskTensor } from "./backend.js";
import { ArgumentError } from "./errors.js";

/**
 * Conversions between TE's three ways of giving sequence lengths: a padding mask ([b, 1, 1, s],
 * 1 = padding, right-padded), per-entry lengths, and cumulative lengths cu_seqlens ([b + 1], starting
 * at 0). Also cu_seqlens_padded, the offsets of sequences in thd tensors that keep padding.
 */

/** Lengths of each batch entry from a padding mask [b, 1, 1, s] (TE's get_cu_seqlens counts the 0s). */
export function seqlensFromPaddingMask(mask: MaskTensor, argument = "attention_mask"): Int32Array {
  const [b, h, sq, s] = mask.shape;
  if (h !== 1 || sq !== 1) {
    throw new ArgumentError(argument, "a padding mask of shape [b, 1, 1, s]", `[${mask.shape.join(", ")}]`);
  }
  if (mask.data.length !== b * s) {
    throw new ArgumentError(
      `${argument}.data`,
      `${b * s} elements for shape [${mask.shape.join(", ")}]`,
      mask.data.length,
    );
  }
  const lengths = new Int32Array(b);
  for (let bi = 0; bi < b; bi++) {
    let len = 0;
    while (len < s && mask.data[bi * s + len] === 0) len++;
    // Lengths become cu_seqlens, so only right padding (valid tokens first) has a meaning here.
    for (let j = len; j < s; j++) {
      if (mask.data[bi * s + j] === 0) {
        throw new ArgumentError(
          argument,
          "right padding (each row's unmasked 0s before its masked 1s)",
          `an unmasked position ${j} after masked position ${len} in batch entry ${bi}`,
        );
      }
    }
    lengths[bi] = len;
  }
  return lengths;
}

/** A padding mask [b, 1, 1, s] (1 = padding) with the given lengths. */
export function paddingMaskFromSeqlens(lengths: ArrayLike<number>, s: number): MaskTensor {
  const b = lengths.length;
  const data = new Uint8Array(b * s);
  for (let bi = 0; bi < b; bi++) {
    if (lengths[bi] > s) throw new ArgumentError(`seqlens[${bi}]`, `a length <= ${s}`, lengths[bi]);
    data.fill(1, bi * s + lengths[bi], (bi + 1) * s);
  }
  return { shape: [b, 1, 1, s], data };
}

/** cu_seqlens [0, l0, l0 + l1, ...] of lengths. */
export function cuSeqlensFromSeqlens(lengths: ArrayLike<number>, argument = "seqlens"): Int32Array {
  const cu = new Int32Array(lengths.length + 1);
  for (let i = 0; i < lengths.length; i++) {
    const l = lengths[i];
    if (!Number.isInteger(l) || l < 0)
      throw new ArgumentError(`${argument}[${i}]`, "a non-negative integer", l);
    cu[i + 1] = cu[i] + l;
  }
  return cu;
}

/** Lengths of each entry from cu_seqlens. */
export function seqlensFromCuSeqlens(cu: ArrayLike<number>): Int32Array {
  const out = new Int32Array(Math.max(cu.length - 1, 0));
  for (let i = 0; i < out.length; i++) out[i] = cu[i + 1] - cu[i];
  return out;
}

/** cu_seqlens of a padding mask (TE's get_cu_seqlens). */
export function cuSeqlensFromPaddingMask(mask: MaskTensor, argument = "attention_mask"): Int32Array {
  return cuSeqlensFromSeqlens(seqlensFromPaddingMask(mask, argument));
}

/**
 * cu_seqlens_padded of thd tensors that keep every entry's padding to s tokens: [0, s, 2s, ..., bs]
 * (the layout a bshd tensor has when flattened to tokens).
 */
export function uniformCuSeqlensPadded(b: number, s: number): Int32Array {
  const cu = new Int32Array(b + 1);
  for (let i = 1; i <= b; i++) cu[i] = i * s;
  return cu;
}

export interface CuSeqlensExpectation {
  /** The batch size: cu_seqlens has b + 1 entries. */
  readonly b?: number;
  /** Total tokens: the last entry must equal it (thd: the rows of the packed tensor). */
  readonly total?: number;
  /** The last entry may be at most this (cu_seqlens with padded storage, bshd/sbhd b*s). */
  readonly maxTotal?: number;
  /** No sequence longer than this (max_seqlen). */
  readonly maxSeqlen?: number;
}

/**
 * Checks cu_seqlens: an Int32Array of b + 1 integers, starting at 0, non-decreasing, ending at the
 * total token count, each length at most max_seqlen. Throws an ArgumentError naming `argument`.
 */
export function validateCuSeqlens(
  argument: string,
  cu: unknown,
  expect: CuSeqlensExpectation = {},
): Int32Array {
  if (!(cu instanceof Int32Array))
    throw new ArgumentError(argument, "an Int32Array of b + 1 cumulative lengths", cu);
  if (cu.length < 1) throw new ArgumentError(argument, "at least one entry (b + 1 with b >= 0)", cu);
  if (expect.b !== undefined && cu.length !== expect.b + 1) {
    throw new ArgumentError(argument, `length b + 1 = ${expect.b + 1}`, `length ${cu.length}`);
  }
  if (cu[0] !== 0) throw new ArgumentError(argument, "a first entry of 0", `${argument}[0] = ${cu[0]}`);
  for (let i = 1; i < cu.length; i++) {
    const len = cu[i] - cu[i - 1];
    if (len < 0) {
      throw new ArgumentError(
        argument,
        "non-decreasing entries",
        `${argument}[${i}] = ${cu[i]} < ${argument}[${i - 1}] = ${cu[i - 1]}`,
      );
    }
    if (expect.maxSeqlen !== undefined && len > expect.maxSeqlen) {
      throw new ArgumentError(
        argument,
        `sequence lengths <= max_seqlen = ${expect.maxSeqlen}`,
        `length ${len} of entry ${i - 1}`,
      );
    }
  }
  const last = cu[cu.length - 1];
  if (expect.total !== undefined && last !== expect.total) {
    throw new ArgumentError(argument, `a last entry equal to the total token count ${expect.total}`, last);
  }
  if (expect.maxTotal !== undefined && last > expect.maxTotal) {
    throw new ArgumentError(
      argument,
      `a last entry <= ${expect.maxTotal} (the tokens the tensor holds)`,
      last,
    );
  }
  return cu;
}

/** The longest sequence in cu_seqlens (TE's max_seqlen when not given). */
export function maxSeqlenOf(cu: ArrayLike<number>): number {
  let m = 0;
  for (let i = 1; i < cu.length; i++) m = Math.max(m, cu[i] - cu[i - 1]);
  return m;
}
