import {
  ArgumentError,
  contiguousStrides,
  type HostDType,
  type HostTensor,
  hostTensor,
  isContiguous,
  numel,
  type TensorBridge,
  type TensorInfo,
} from "@te/core";
import type { Tensor } from "onnxruntime-common";
import { ortModule } from "./runtime/ort-runtime.js";

/** The ONNX Runtime tensor type: onnxruntime-common's Tensor, shared by onnxruntime-node and -web. */
export type OrtTensor = Tensor;

/** ORT element types that hold attention tensors, and our dtype for each. */
const DTYPE_OF_ORT: Readonly<Record<string, HostDType>> = {
  float32: "fp32",
  float16: "fp16",
  float64: "fp64",
};
const ORT_OF_DTYPE: Readonly<Partial<Record<HostDType, "float32" | "float16" | "float64">>> = {
  fp32: "float32",
  fp16: "float16",
  fp64: "float64",
};

/** A contiguous copy of a strided host tensor's elements, in row-major order. */
function contiguousData(t: HostTensor): HostTensor["data"] {
  const n = numel(t.shape);
  if (isContiguous(t)) return t.data.slice(t.offset, t.offset + n);
  const out = new (t.data.constructor as new (n: number) => HostTensor["data"])(n);
  const index = new Array<number>(t.shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let at = t.offset;
    for (let a = 0; a < index.length; a++) at += index[a] * t.strides[a];
    out[i] = t.data[at];
    for (let a = index.length - 1; a >= 0; a--) {
      if (++index[a] < t.shape[a]) break;
      index[a] = 0;
    }
  }
  return out;
}

export function ortDTypeOf(t: OrtTensor): HostDType {
  const dtype = DTYPE_OF_ORT[t.type];
  if (!dtype)
    throw new ArgumentError("tensor.type", "an ORT tensor of type float32, float16 or float64", t.type);
  return dtype;
}

/** Host ↔ ORT tensors (CPU-resident ORT tensors; data is copied, never shared with the caller). */
export const ortTensors: TensorBridge<OrtTensor> = {
  kind: "ort",
  async fromHost(t: HostTensor): Promise<OrtTensor> {
    const type = ORT_OF_DTYPE[t.dtype];
    if (!type)
      throw new ArgumentError(
        "tensor.dtype",
        "fp32, fp16 or fp64 (ONNX Runtime has no JS type for others)",
        t.dtype,
      );
    const ort = await ortModule();
    return new ort.Tensor(type, contiguousData(t) as Float32Array, [...t.shape]);
  },
  async toHost(t: OrtTensor): Promise<HostTensor> {
    const dtype = ortDTypeOf(t);
    const data = t.location === "cpu" ? t.data : await t.getData();
    // Copied so that the host tensor outlives (and cannot alias) the ORT tensor; fp16 as bit patterns.
    const values = data as Float32Array | Uint16Array;
    const copy =
      dtype === "fp16"
        ? new Uint16Array(values.buffer, values.byteOffset, values.length).slice()
        : values.slice();
    return hostTensor(dtype, t.dims, copy);
  },
  info(t: OrtTensor): TensorInfo {
    return {
      shape: [...t.dims],
      strides: contiguousStrides(t.dims),
      dtype: ortDTypeOf(t),
      storage: t,
      offset: 0,
    };
  },
  dispose(t: OrtTensor): void {
    t.dispose();
  },
};
