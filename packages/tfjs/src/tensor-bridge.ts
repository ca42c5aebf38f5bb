import {
  ArgumentError,
  type HostTensor,
  hostTensor,
  isContiguous,
  numel,
  type TensorBridge,
  type TensorInfo,
} from "@te/core";
import * as tf from "@tensorflow/tfjs-core";

/** The TensorBridge kind of tf.Tensor: calls whose tensors are tf.Tensors select among the "tfjs" backends. */
export const TFJS_KIND = "tfjs";

/** Copies a strided host tensor into a new contiguous Float32Array (tfjs tensors are always dense). */
export function denseFloat32(t: HostTensor): Float32Array {
  if (
    t.data instanceof Float32Array &&
    t.offset === 0 &&
    isContiguous(t) &&
    t.data.length === numel(t.shape)
  ) {
    // tf.tensor copies its values, so handing it the caller's array does not alias it.
    return t.data;
  }
  const out = new Float32Array(numel(t.shape));
  const rank = t.shape.length;
  const index = new Array<number>(rank).fill(0);
  for (let n = 0; n < out.length; n++) {
    let at = t.offset;
    for (let a = 0; a < rank; a++) at += index[a] * t.strides[a];
    out[n] = t.data[at];
    for (let a = rank - 1; a >= 0; a--) {
      if (++index[a] < t.shape[a]) break;
      index[a] = 0;
    }
  }
  return out;
}

/**
 * tf.Tensor as an attention tensor. tfjs stores floating point as float32 only, so fp32 (and the
 * reference's fp64, narrowed) are the dtypes that can cross; fp16/bf16/fp8 have no tfjs dtype.
 */
export const tfjsTensors: TensorBridge<tf.Tensor> = {
  kind: TFJS_KIND,
  async fromHost(t: HostTensor): Promise<tf.Tensor> {
    if (t.dtype !== "fp32" && t.dtype !== "fp64") {
      throw new ArgumentError("tensor.dtype", "fp32 or fp64 (tfjs stores floats as float32 only)", t.dtype);
    }
    return tf.tensor(denseFloat32(t), [...t.shape], "float32");
  },
  async toHost(t: tf.Tensor): Promise<HostTensor> {
    if (t.dtype !== "float32") throw new ArgumentError("tensor.dtype", "a float32 tf.Tensor", t.dtype);
    const data = (await t.data()) as Float32Array;
    return hostTensor("fp32", t.shape, data);
  },
  info(t: tf.Tensor): TensorInfo {
    if (t.dtype !== "float32") throw new ArgumentError("tensor.dtype", "a float32 tf.Tensor", t.dtype);
    return { shape: t.shape, dtype: "fp32", storage: t.dataId };
  },
  dispose(t: tf.Tensor): void {
    t.dispose();
  },
};
