import type { DType } from "./dtype.js";

/**
 * The typed array a host tensor stores its elements in: fp32 in Float32Array, fp16/bf16 as their
 * 16-bit patterns in Uint16Array, fp8 as bytes in Uint8Array. Float64Array is accepted for fp32
 * tensors produced by the float64 reference (dtype "fp64").
 */
export type HostArray = Float64Array | Float32Array | Uint16Array | Uint8Array;
export type HostDType = DType | "fp64";

/**
 * A strided view over host memory. Strides and offset count elements, not bytes, so packed layouts
 * (q, k, v as views of one `bs3hd` buffer) are three HostTensors over the same `data`.
 */
export interface HostTensor {
  readonly dtype: HostDType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly data: HostArray;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

const ARRAY_OF: Record<HostDType, new (n: number) => HostArray> = {
  fp64: Float64Array,
  fp32: Float32Array,
  fp16: Uint16Array,
  bf16: Uint16Array,
  fp8e4m3: Uint8Array,
  fp8e5m2: Uint8Array,
};

/** A new contiguous tensor. */
export function hostTensor(dtype: HostDType, shape: readonly number[], data?: HostArray): HostTensor {
  const n = numel(shape);
  const storage = data ?? new ARRAY_OF[dtype](n);
  return { dtype, shape: [...shape], strides: contiguousStrides(shape), offset: 0, data: storage };
}

export function isContiguous(t: HostTensor): boolean {
  const c = contiguousStrides(t.shape);
  return t.shape.every((d, i) => d === 1 || t.strides[i] === c[i]);
}
