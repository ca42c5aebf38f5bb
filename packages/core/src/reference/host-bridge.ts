import type { TensorBridge } from "../backend.js";
import type { HostTensor } from "../tensor.js";

/**
 * The bridge of host tensors ("host" kind): host tensors are already host memory, so moving them is
 * the identity. Backends on host tensors never write into their inputs, so sharing is safe.
 */
export const hostTensors: TensorBridge<HostTensor> = {
  kind: "host",
  fromHost: async (t) => t,
  toHost: async (t) => t,
  info: (t) => ({ shape: t.shape, strides: t.strides, dtype: t.dtype, storage: t.data, offset: t.offset }),
  dispose: () => {},
};
