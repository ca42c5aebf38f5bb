import { contiguousStrides, type HostTensor } from "@te/core";
import * as tf from "@tensorflow/tfjs-core";

/**
 * A HostTensor over a float32 tf.Tensor's own storage. On tfjs's cpu backend dataSync() hands back
 * the array the backend keeps (no copy), so a host kernel reads the tensor in place; it must treat
 * the view as read-only (it is the caller's tensor).
 */
export function hostView(t: tf.Tensor): HostTensor {
  const data = t.dataSync() as Float32Array;
  return { dtype: "fp32", shape: t.shape, strides: contiguousStrides(t.shape), offset: 0, data };
}

/** Whether the active tfjs backend keeps tensors in host memory that dataSync() exposes without a copy. */
export function activeBackendIsHostMemory(): boolean {
  return tf.getBackend() === "cpu";
}
