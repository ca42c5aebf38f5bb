import { ArgumentError } from "../errors.js";
import { fromFloat64, toFloat64 } from "../reference/host-values.js";
import { type HostArray, type HostTensor, hostTensor, numel } from "../tensor.js";

export { fromFloat64, toFloat64 };

/**
 * Contiguous host tensors cut and joined along one axis: the sequence chunks, head groups and
 * partial results the context-parallel algorithms move between ranks and blocks.
 */

/**
 * A contiguous copy of `t` in its own dtype (any strides in). Decoding and re-encoding is exact for
 * every dtype the context-parallel path accepts (fp64, fp32, fp16, bf16).
 */
export function contiguousCopy(t: HostTensor): HostTensor {
  return fromFloat64(t.dtype, t.shape, toFloat64(t));
}

/** Elements before and after `axis` in a contiguous shape: the loop bounds of every axis operation. */
function around(shape: readonly number[], axis: number): { outer: number; inner: number } {
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) {
    throw new ArgumentError("axis", `an axis of a rank-${shape.length} tensor`, axis);
  }
  return { outer: numel(shape.slice(0, axis)), inner: numel(shape.slice(axis + 1)) };
}

/** Rows [start, end) of contiguous data of `shape` along `axis`, as a new contiguous array. */
export function sliceArray<A extends HostArray>(
  data: A,
  shape: readonly number[],
  axis: number,
  start: number,
  end: number,
): A {
  const { outer, inner } = around(shape, axis);
  if (!(0 <= start && start <= end && end <= shape[axis])) {
    throw new ArgumentError("slice", `0 <= start <= end <= ${shape[axis]}`, [start, end]);
  }
  const rows = end - start;
  const Ctor = data.constructor as new (n: number) => A;
  const out = new Ctor(outer * rows * inner);
  for (let o = 0; o < outer; o++) {
    const from = (o * shape[axis] + start) * inner;
    out.set(data.subarray(from, from + rows * inner), o * rows * inner);
  }
  return out;
}

/**
 * Writes (or adds) contiguous `src` of `srcShape` into contiguous `dst` of `dstShape` at row `start`
 * of `axis`; the shapes agree on every other axis.
 */
export function placeArray(
  dst: HostArray,
  dstShape: readonly number[],
  axis: number,
  start: number,
  src: HostArray,
  srcShape: readonly number[],
  mode: "set" | "add",
): void {
  const { outer, inner } = around(dstShape, axis);
  const rows = srcShape[axis];
  if (start < 0 || start + rows > dstShape[axis] || src.length !== outer * rows * inner) {
    throw new ArgumentError(
      "place",
      `rows [${start}, ${start + rows}) of a ${dstShape[axis]}-row axis`,
      srcShape,
    );
  }
  for (let o = 0; o < outer; o++) {
    const to = (o * dstShape[axis] + start) * inner;
    const from = o * rows * inner;
    if (mode === "set") dst.set(src.subarray(from, from + rows * inner), to);
    else for (let i = 0; i < rows * inner; i++) dst[to + i] += src[from + i];
  }
}

/** Contiguous arrays of the given shapes joined along `axis` (all other axes equal). */
export function concatArrays<A extends HostArray>(
  parts: readonly { data: A; shape: readonly number[] }[],
  axis: number,
): A {
  const shape = [...parts[0].shape];
  shape[axis] = parts.reduce((n, p) => n + p.shape[axis], 0);
  const Ctor = parts[0].data.constructor as new (n: number) => A;
  const out = new Ctor(numel(shape));
  let start = 0;
  for (const p of parts) {
    placeArray(out, shape, axis, start, p.data, p.shape, "set");
    start += p.shape[axis];
  }
  return out;
}

/** Rows [start, end) of a contiguous host tensor along `axis`. */
export function sliceTensor(t: HostTensor, axis: number, start: number, end: number): HostTensor {
  const shape = [...t.shape];
  shape[axis] = end - start;
  return hostTensor(t.dtype, shape, sliceArray(t.data, t.shape, axis, start, end));
}

/** Several arrays of one type laid end to end in one buffer, so that one message carries them all. */
export function packArrays<A extends HostArray>(parts: readonly A[]): A {
  const Ctor = parts[0].constructor as new (n: number) => A;
  const out = new Ctor(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The inverse of packArrays: copies of consecutive pieces of the given lengths. */
export function unpackArrays<A extends HostArray>(packed: A, lengths: readonly number[]): A[] {
  let at = 0;
  return lengths.map((n) => {
    const piece = packed.slice(at, at + n) as A;
    at += n;
    return piece;
  });
}

/** `shape` with `rows` rows on `axis`. */
export function withRows(shape: readonly number[], axis: number, rows: number): number[] {
  return shape.map((n, i) => (i === axis ? rows : n));
}
