import { validateCuSeqlens } from "./cu-seqlens.js";
import { ArgumentError } from "./errors.js";
import type { QkvFormat } from "./layout.js";
import { type HostTensor, hostTensor } from "./tensor.js";

/**
 * Packing and unpacking between the padded formats (bshd [b, s, h, d], sbhd [s, b, h, d]) and thd
 * ([t, h, d], the valid tokens of all entries one after another), and bshd <-> sbhd transposes.
 * Values are copied as stored (no dtype conversion); inputs are never written; outputs are new
 * contiguous tensors.
 */

type PaddedFormat = Exclude<QkvFormat, "thd">;

function checkRank(argument: string, t: HostTensor, rank: number, what: string): void {
  if (t.shape.length !== rank || t.strides.length !== rank) {
    throw new ArgumentError(argument, `a rank-${rank} tensor ${what}`, `shape [${t.shape.join(", ")}]`);
  }
}

/** Storage offset of (batch bi, position i) of a padded tensor, before the head dims. */
function paddedRowOffset(t: HostTensor, format: PaddedFormat, bi: number, i: number): number {
  const [bDim, sDim] = format === "bshd" ? [0, 1] : [1, 0];
  return t.offset + bi * t.strides[bDim] + i * t.strides[sDim];
}

/** Copies one token's [h, d] values from storage offset `from` of `src` to `to` of contiguous `dst`. */
function copyToken(src: HostTensor, from: number, dst: HostTensor, to: number, hDim: number): void {
  const h = src.shape[hDim];
  const d = src.shape[hDim + 1];
  const sh = src.strides[hDim];
  const sd = src.strides[hDim + 1];
  for (let hi = 0; hi < h; hi++) {
    for (let di = 0; di < d; di++) dst.data[to + hi * d + di] = src.data[from + hi * sh + di * sd];
  }
}

const dimsOf = (t: HostTensor, format: PaddedFormat): { b: number; s: number } =>
  format === "bshd" ? { b: t.shape[0], s: t.shape[1] } : { b: t.shape[1], s: t.shape[0] };

/**
 * bshd/sbhd -> thd: entry bi's first (cu[bi + 1] - cu[bi]) tokens go to rows from
 * cuSeqlensPadded[bi] (or cu[bi] without padding); padding rows of the output are zero.
 */
export function packToThd(
  t: HostTensor,
  format: PaddedFormat,
  cuSeqlens: Int32Array,
  cuSeqlensPadded?: Int32Array,
): HostTensor {
  checkRank("tensor", t, 4, `in ${format}`);
  const { b, s } = dimsOf(t, format);
  validateCuSeqlens("cu_seqlens", cuSeqlens, { b, maxSeqlen: s });
  const starts = cuSeqlensPadded ?? cuSeqlens;
  if (cuSeqlensPadded) validateCuSeqlens("cu_seqlens_padded", cuSeqlensPadded, { b });
  const [h, d] = [t.shape[2], t.shape[3]];
  const out = hostTensor(t.dtype, [starts[b], h, d]);
  for (let bi = 0; bi < b; bi++) {
    const len = cuSeqlens[bi + 1] - cuSeqlens[bi];
    if (cuSeqlensPadded && len > cuSeqlensPadded[bi + 1] - cuSeqlensPadded[bi]) {
      throw new ArgumentError(
        "cu_seqlens_padded",
        `room for the ${len} tokens of entry ${bi}`,
        cuSeqlensPadded[bi + 1] - cuSeqlensPadded[bi],
      );
    }
    for (let i = 0; i < len; i++)
      copyToken(t, paddedRowOffset(t, format, bi, i), out, (starts[bi] + i) * h * d, 2);
  }
  return out;
}

/** thd -> bshd/sbhd with s positions per entry; positions past an entry's length are zero. */
export function unpackFromThd(
  t: HostTensor,
  format: PaddedFormat,
  cuSeqlens: Int32Array,
  s: number,
  cuSeqlensPadded?: Int32Array,
): HostTensor {
  checkRank("tensor", t, 3, "in thd");
  const b = cuSeqlens.length - 1;
  const starts = cuSeqlensPadded ?? cuSeqlens;
  validateCuSeqlens("cu_seqlens", cuSeqlens, {
    maxSeqlen: s,
    ...(cuSeqlensPadded ? {} : { maxTotal: t.shape[0] }),
  });
  if (cuSeqlensPadded) validateCuSeqlens("cu_seqlens_padded", cuSeqlensPadded, { b, maxTotal: t.shape[0] });
  const [h, d] = [t.shape[1], t.shape[2]];
  const out = hostTensor(t.dtype, format === "bshd" ? [b, s, h, d] : [s, b, h, d]);
  for (let bi = 0; bi < b; bi++) {
    const len = cuSeqlens[bi + 1] - cuSeqlens[bi];
    for (let i = 0; i < len; i++) {
      const row = format === "bshd" ? bi * s + i : i * b + bi;
      copyToken(t, t.offset + (starts[bi] + i) * t.strides[0], out, row * h * d, 1);
    }
  }
  return out;
}

/** bshd <-> sbhd: swaps the first two dims into a new contiguous tensor (same format: a contiguous copy). */
export function transposeFormat(t: HostTensor, from: PaddedFormat, to: PaddedFormat): HostTensor {
  checkRank("tensor", t, 4, `in ${from}`);
  const { b, s } = dimsOf(t, from);
  const [h, d] = [t.shape[2], t.shape[3]];
  const out = hostTensor(t.dtype, to === "bshd" ? [b, s, h, d] : [s, b, h, d]);
  for (let bi = 0; bi < b; bi++) {
    for (let i = 0; i < s; i++) {
      const row = to === "bshd" ? bi * s + i : i * b + bi;
      copyToken(t, paddedRowOffset(t, from, bi, i), out, row * h * d, 2);
    }
  }
  return out;
}
