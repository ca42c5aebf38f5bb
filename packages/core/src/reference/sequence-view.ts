import { ArgumentError } from "../errors.js";
import type { QkvFormat } from "../layout.js";
import { type HostDType, type HostTensor, hostTensor } from "../tensor.js";
import { checkView, decodeValue, encodeValue } from "./host-values.js";

/**
 * Reading and writing attention tensors of any format through their strides: the element of batch
 * entry bi, position i, head hh, channel c. Packed layouts (bs3hd, t2hd, ...) need nothing special:
 * their q, k, v are views with the packing stride in their strides.
 */
export interface SequenceView {
  /** Storage index of (bi, i, head 0, channel 0). */
  row(bi: number, i: number): number;
  readonly headStride: number;
  readonly channelStride: number;
}

/** Dimensions of one attention tensor, in logical terms. */
export interface SequenceDims {
  readonly b: number;
  /** Max sequence length (the s of bshd/sbhd; for thd, the longest sequence). */
  readonly s: number;
  readonly heads: number;
  /** Channels (d or dv). */
  readonly x: number;
  /** Actual length of each batch entry. */
  readonly lengths: ArrayLike<number>;
  /** thd only: row of each sequence's first token in the packed tensor. */
  readonly starts?: ArrayLike<number>;
}

/** The shape a tensor of `format` has for the dims (thd: `rows` packed rows). */
export function expectedShape(format: QkvFormat, dims: SequenceDims, rows: number): number[] {
  if (format === "bshd") return [dims.b, dims.s, dims.heads, dims.x];
  if (format === "sbhd") return [dims.s, dims.b, dims.heads, dims.x];
  return [rows, dims.heads, dims.x];
}

/** Validates a tensor's shape against the dims and makes its view. */
export function sequenceView(
  name: string,
  t: HostTensor,
  format: QkvFormat,
  dims: SequenceDims,
): SequenceView {
  const rows = format === "thd" ? t.shape[0] : 0;
  const shape = expectedShape(format, dims, rows);
  if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
    throw new ArgumentError(`${name}.shape`, `[${shape}] (${format})`, `[${t.shape}]`);
  }
  checkView(name, t);
  const st = t.strides;
  if (format === "thd") {
    const starts = dims.starts!;
    for (let bi = 0; bi < dims.b; bi++) {
      if (starts[bi] < 0 || starts[bi] + dims.lengths[bi] > rows) {
        throw new ArgumentError(
          `${name}.shape[0]`,
          `at least ${starts[bi] + dims.lengths[bi]} rows (sequence ${bi})`,
          rows,
        );
      }
    }
    return { row: (bi, i) => t.offset + (starts[bi] + i) * st[0], headStride: st[1], channelStride: st[2] };
  }
  if (format === "bshd") {
    return { row: (bi, i) => t.offset + bi * st[0] + i * st[1], headStride: st[2], channelStride: st[3] };
  }
  return { row: (bi, i) => t.offset + i * st[0] + bi * st[1], headStride: st[2], channelStride: st[3] };
}

/**
 * The valid positions of a tensor as float64 in canonical order [b][heads][s][x]; positions past an
 * entry's length are zero.
 */
export function gather(t: HostTensor, view: SequenceView, dims: SequenceDims): Float64Array {
  const { b, s, heads, x } = dims;
  const out = new Float64Array(b * heads * s * x);
  // fp32/fp64 storage holds the values themselves: no per-element decoding.
  const direct = t.dtype === "fp32" || t.dtype === "fp64";
  const { data } = t;
  const step = view.channelStride;
  for (let bi = 0; bi < b; bi++) {
    for (let i = 0; i < dims.lengths[bi]; i++) {
      const row = view.row(bi, i);
      for (let hh = 0; hh < heads; hh++) {
        const base = ((bi * heads + hh) * s + i) * x;
        const at = row + hh * view.headStride;
        if (direct) for (let c = 0; c < x; c++) out[base + c] = data[at + c * step];
        else for (let c = 0; c < x; c++) out[base + c] = decodeValue(t.dtype, data[at + c * step]);
      }
    }
  }
  return out;
}

/**
 * A new contiguous tensor of `format` and dtype holding canonical [b][heads][s][x] values at the valid
 * positions (zeros elsewhere); for thd it has `rows` rows.
 */
export function scatter(
  values: Float64Array,
  format: QkvFormat,
  dims: SequenceDims,
  rows: number,
  dtype: HostDType,
): HostTensor {
  const t = hostTensor(dtype, expectedShape(format, dims, rows));
  const view = sequenceView("output", t, format, dims);
  const { b, s, heads, x } = dims;
  for (let bi = 0; bi < b; bi++) {
    for (let i = 0; i < dims.lengths[bi]; i++) {
      const row = view.row(bi, i);
      for (let hh = 0; hh < heads; hh++) {
        const base = ((bi * heads + hh) * s + i) * x;
        const at = row + hh * view.headStride;
        for (let c = 0; c < x; c++)
          t.data[at + c * view.channelStride] = encodeValue(dtype, values[base + c]);
      }
    }
  }
  return t;
}
