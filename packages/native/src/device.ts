import { ArgumentError, type HostTensor, hostTensor, numel, setCudaArch, type TensorBridge } from "@te/core";
import type { NativeBinding, NativeDeviceInfo, NativeDeviceTensor } from "./binding.js";
import { loadBinding, tryLoadBinding } from "./loader.js";

/** CUDA devices this process can use (none when the addon was built without CUDA or there is no GPU). */
export function deviceInfo(): NativeDeviceInfo {
  return tryLoadBinding()?.deviceInfo() ?? { cudaCompiled: false, devices: [] };
}

/** Records the first device's arch in core's selection context; returns it (null without a GPU). */
export function detectCudaArch(): number | null {
  const arch = deviceInfo().devices[0]?.arch ?? null;
  if (arch !== null) setCudaArch(arch);
  return arch;
}

/**
 * A tensor in CUDA memory: contiguous, with shape and dtype; `buffer` owns the allocation. Views of
 * one buffer (packed layouts) share it and carry their own strides and offset.
 */
export interface CudaTensor {
  readonly dtype: HostTensor["dtype"];
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly buffer: NativeDeviceTensor;
}

const BYTES: Record<string, number> = { fp64: 8, fp32: 4, fp16: 2, bf16: 2, fp8e4m3: 1, fp8e5m2: 1 };

/** Copies a host tensor into new CUDA memory (its whole storage, so strided views stay views). */
export function uploadTensor(t: HostTensor, device = 0): CudaTensor {
  const binding = loadBinding();
  if (t.dtype === "fp64")
    throw new ArgumentError("t.dtype", "fp32, fp16, bf16 or fp8 (CUDA tensors)", t.dtype);
  const buffer = new binding.DeviceTensor(t.data.byteLength, device);
  try {
    buffer.upload(t.data);
  } catch (e) {
    buffer.dispose();
    throw e;
  }
  return { dtype: t.dtype, shape: [...t.shape], strides: [...t.strides], offset: t.offset, buffer };
}

/** Copies a CUDA tensor's storage back to a new host tensor with the same strides. */
export function downloadTensor(t: CudaTensor): HostTensor {
  const elems = t.buffer.byteLength / BYTES[t.dtype];
  const host = hostTensor(t.dtype, [elems]);
  t.buffer.download(host.data);
  return { dtype: t.dtype, shape: [...t.shape], strides: [...t.strides], offset: t.offset, data: host.data };
}

/**
 * A new contiguous CUDA tensor from the addon's caching pool: uninitialised (kernels write every
 * element they own), or zeroed on the device when `zeroed`.
 */
export function allocateTensor(
  dtype: HostTensor["dtype"],
  shape: readonly number[],
  device = 0,
  zeroed = false,
): CudaTensor {
  return allocateWith(loadBinding(), dtype, shape, device, zeroed);
}

/** allocateTensor through a given binding (the backends hold theirs). */
export function allocateWith(
  binding: NativeBinding,
  dtype: HostTensor["dtype"],
  shape: readonly number[],
  device: number,
  zeroed: boolean,
): CudaTensor {
  const buffer = new binding.DeviceTensor(numel(shape) * BYTES[dtype], device);
  if (zeroed) buffer.zero();
  const strides = shape.map((_, i) => numel(shape.slice(i + 1)));
  return { dtype, shape: [...shape], strides, offset: 0, buffer };
}

/**
 * Checks that `t`, the call argument `name`, is a live CUDA tensor of this binding on `device` (when
 * given); a host tensor, a disposed tensor or one on another device is an ArgumentError naming it.
 */
export function checkCudaTensor(
  binding: NativeBinding,
  name: string,
  t: unknown,
  device?: number,
): CudaTensor {
  const buffer = (t as Partial<CudaTensor> | null | undefined)?.buffer;
  if (!(buffer instanceof binding.DeviceTensor)) {
    const got = (t as Partial<HostTensor> | null | undefined)?.data !== undefined ? "a host tensor" : t;
    throw new ArgumentError(name, "a CUDA tensor (cudaTensors.fromHost or allocateTensor)", got);
  }
  if (buffer.disposed) throw new ArgumentError(name, "a CUDA tensor that was not disposed", "a disposed one");
  if (device !== undefined && buffer.device !== device)
    throw new ArgumentError(`${name}.device`, `device ${device} (the device of q)`, buffer.device);
  return t as CudaTensor;
}

/**
 * `pending` (a wait on the device that finishes on libuv's thread pool), with the event loop kept
 * turning (setImmediate, other work still runs) for at most `spinMs` meanwhile, so the JS thread is
 * awake when the wait ends instead of being woken from the kernel's idle states. Measured on the H200
 * (te bench, benchmarks/results/host-path-h200): test_1 fwd+bwd cuda.flash 0.961 -> 0.721 ms, cuda.cudnn
 * 0.446 -> 0.393; longer waits stop spinning after spinMs and sleep as before.
 */
export function awaitAwake<T>(pending: Promise<T>, spinMs = 2): Promise<T> {
  let done = false;
  const until = performance.now() + spinMs;
  const turn = () => {
    if (!done && performance.now() < until) setImmediate(turn);
  };
  setImmediate(turn);
  return pending.finally(() => {
    done = true;
  });
}

/** The "cuda" TensorBridge H4's backends (cuda.flash, cuda.unfused, cuda.cudnn) use. */
export const cudaTensors: TensorBridge<CudaTensor> = {
  kind: "cuda",
  fromHost: async (t) => uploadTensor(t),
  toHost: async (t) => downloadTensor(t),
  info: (t) => ({ shape: t.shape, strides: t.strides, dtype: t.dtype, storage: t.buffer, offset: t.offset }),
  dispose: (t) => t.buffer.dispose(),
  // Kernels, copies into pooled memory and frees are queued; this waits for all of them.
  synchronize: () => awaitAwake(loadBinding().synchronize(0)),
  // CUDA events on the stream the backends queue on (device 0, where the cuda.* families run).
  deviceTimer: () => {
    const Timer = loadBinding().DeviceTimer;
    if (Timer === undefined) throw new Error("this te_native build has no DeviceTimer (rebuild the addon)");
    return new Timer(0);
  },
};
