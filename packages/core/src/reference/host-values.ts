import { bf16Bits, bf16Value, FP8_E4M3, FP8_E5M2, fp8Bits, fp8Value, fp16Bits, fp16Value } from "../codec.js";
import { ArgumentError } from "../errors.js";
import { type HostDType, type HostTensor, hostTensor, numel } from "../tensor.js";

/**
 * Float64 views of host tensors: decoding the storage of each dtype, gathering a strided view into a
 * contiguous logical array, and encoding float64 values back into a tensor of a dtype.
 */

/** The value of a stored element (the raw number of the typed array) for the tensor's dtype. */
export function decodeValue(dtype: HostDType, raw: number): number {
  switch (dtype) {
    case "fp64":
    case "fp32":
      return raw;
    case "fp16":
      return fp16Value(raw);
    case "bf16":
      return bf16Value(raw);
    case "fp8e4m3":
      return fp8Value(raw, FP8_E4M3);
    case "fp8e5m2":
      return fp8Value(raw, FP8_E5M2);
  }
}

/** The raw stored number of a value in the dtype (the typed array rounds fp32/fp64 itself). */
export function encodeValue(dtype: HostDType, x: number): number {
  switch (dtype) {
    case "fp64":
    case "fp32":
      return x;
    case "fp16":
      return fp16Bits(x);
    case "bf16":
      return bf16Bits(x);
    case "fp8e4m3":
      return fp8Bits(x, FP8_E4M3);
    case "fp8e5m2":
      return fp8Bits(x, FP8_E5M2);
  }
}

/** Checks that every element a view addresses lies inside its storage. */
export function checkView(name: string, t: HostTensor): void {
  if (t.strides.length !== t.shape.length) {
    throw new ArgumentError(`${name}.strides`, `${t.shape.length} strides for shape [${t.shape}]`, t.strides);
  }
  if (numel(t.shape) === 0) return;
  let lo = t.offset;
  let hi = t.offset;
  t.shape.forEach((n, i) => {
    const span = (n - 1) * t.strides[i];
    if (span < 0) lo += span;
    else hi += span;
  });
  if (lo < 0 || hi >= t.data.length) {
    throw new ArgumentError(
      name,
      `a view inside its storage of ${t.data.length} elements`,
      `elements ${lo}..${hi}`,
    );
  }
}

/** The tensor's values as a contiguous float64 array in its logical (shape) order. */
export function toFloat64(t: HostTensor): Float64Array {
  const out = new Float64Array(numel(t.shape));
  const rank = t.shape.length;
  if (out.length === 0) return out;
  const index = new Array<number>(rank).fill(0);
  let pos = t.offset;
  for (let n = 0; n < out.length; n++) {
    out[n] = decodeValue(t.dtype, t.data[pos]);
    // Odometer increment over the logical index, moving the storage position by strides.
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]++;
      pos += t.strides[axis];
      if (index[axis] < t.shape[axis]) break;
      pos -= t.strides[axis] * t.shape[axis];
      index[axis] = 0;
    }
  }
  return out;
}

/** A new contiguous tensor of the dtype holding `values` (rounded to the dtype, nearest even). */
export function fromFloat64(
  dtype: HostDType,
  shape: readonly number[],
  values: ArrayLike<number>,
): HostTensor {
  const t = hostTensor(dtype, shape);
  if (values.length !== t.data.length) {
    throw new ArgumentError("values", `${t.data.length} values for shape [${shape}]`, values.length);
  }
  for (let n = 0; n < values.length; n++) t.data[n] = encodeValue(dtype, values[n]);
  return t;
}
