/**
 * GPUBuffer-backed tensors: a strided view (element strides and offset) over a buffer, so the q, k and v of a
 * packed layout are three views of one buffer and buffers of tfjs-webgpu or onnxruntime-web are used in place.
 * fp16 and bf16 elements are 16-bit patterns, two per 32-bit word.
 */
import {
  ArgumentError,
  bf16Bits,
  bf16Value,
  contiguousStrides,
  fp16Bits,
  fp16Value,
  type HostTensor,
  hostTensor,
  numel,
  type TensorBridge,
  type TensorInfo,
} from "@te/core";
import { recycleBuffer, USAGE_STORAGE } from "./buffer-pool.js";
import { getDevice } from "./device.js";

export const WEBGPU_DTYPES = ["fp32", "fp16", "bf16"] as const;
export type WebGpuDType = (typeof WEBGPU_DTYPES)[number];

export interface WebGpuTensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype: WebGpuDType;
  /** Element strides. */
  readonly strides: readonly number[];
  /** Element offset of the first element in the buffer. */
  readonly offset: number;
  /** The device the buffer belongs to, when it is not the one `setDevice`/`getDevice` give (per-call devices). */
  readonly device?: GPUDevice;
}

export const bytesPerElement = (dtype: WebGpuDType): number => (dtype === "fp32" ? 4 : 2);

/** Buffer sizes must be multiples of 4 bytes; 16-bit tensors of odd length are padded. */
const paddedBytes = (elements: number, dtype: WebGpuDType): number =>
  Math.max(4, Math.ceil((elements * bytesPerElement(dtype)) / 4) * 4);

/** A view of a caller's buffer (tfjs-webgpu, onnxruntime-web, ...); contiguous unless strides are given. */
export function wrapBuffer(
  buffer: GPUBuffer,
  shape: readonly number[],
  dtype: WebGpuDType = "fp32",
  strides: readonly number[] = contiguousStrides(shape),
  offset = 0,
  device?: GPUDevice,
): WebGpuTensor {
  if (!(WEBGPU_DTYPES as readonly string[]).includes(dtype))
    throw new ArgumentError("dtype", "fp32, fp16 or bf16", dtype);
  if (strides.length !== shape.length)
    throw new ArgumentError("strides", `${shape.length} strides, one per dim`, strides);
  return { buffer, shape: [...shape], dtype, strides: [...strides], offset, ...(device ? { device } : {}) };
}

/** A new zero-filled contiguous tensor (WebGPU zero-initialises buffers). */
export function zerosTensor(
  device: GPUDevice,
  dtype: WebGpuDType,
  shape: readonly number[],
  label?: string,
): WebGpuTensor {
  const buffer = device.createBuffer({
    label,
    size: paddedBytes(numel(shape), dtype),
    usage: USAGE_STORAGE(),
  });
  return wrapBuffer(buffer, shape, dtype, contiguousStrides(shape), 0, device);
}

/** The host values of a typed array as the storage words of `dtype`. */
function encodeForStorage(t: HostTensor, dtype: WebGpuDType): ArrayBuffer {
  const n = t.data.length;
  if (dtype === "fp32") {
    if (t.dtype !== "fp32" && t.dtype !== "fp64")
      throw new ArgumentError("tensor.dtype", "fp32 or fp64 data for an fp32 tensor", t.dtype);
    const out = new Float32Array(paddedBytes(n, "fp32") / 4);
    out.set(t.data);
    return out.buffer;
  }
  const out = new Uint16Array(paddedBytes(n, dtype) / 2);
  if (t.dtype === dtype) out.set(t.data as Uint16Array);
  else if (t.dtype === "fp32" || t.dtype === "fp64") {
    const encode = dtype === "fp16" ? fp16Bits : bf16Bits;
    for (let i = 0; i < n; i++) out[i] = encode(t.data[i]);
  } else
    throw new ArgumentError("tensor.dtype", `${dtype}, fp32 or fp64 data for a ${dtype} tensor`, t.dtype);
  return out.buffer;
}

/** Uploads a host tensor as-is: the whole storage array, keeping its strides and offset. */
export async function upload(t: HostTensor, device?: GPUDevice, dtype?: WebGpuDType): Promise<WebGpuTensor> {
  const dev = device ?? (await getDevice());
  const target = dtype ?? (t.dtype === "fp64" ? "fp32" : t.dtype);
  if (!(WEBGPU_DTYPES as readonly string[]).includes(target))
    throw new ArgumentError("tensor.dtype", "fp32, fp16, bf16 or fp64", t.dtype);
  const data = encodeForStorage(t, target as WebGpuDType);
  const buffer = dev.createBuffer({ size: data.byteLength, usage: USAGE_STORAGE() });
  dev.queue.writeBuffer(buffer, 0, data);
  return wrapBuffer(buffer, t.shape, target as WebGpuDType, t.strides, t.offset, device);
}

/** Reads raw bytes of a buffer back to the host. */
export async function readBuffer(
  device: GPUDevice,
  buffer: GPUBuffer,
  byteOffset: number,
  byteLength: number,
): Promise<ArrayBuffer> {
  const start = Math.floor(byteOffset / 4) * 4;
  const size = Math.ceil((byteOffset + byteLength - start) / 4) * 4;
  const staging = device.createBuffer({
    size: Math.max(4, size),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, start, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const bytes = staging.getMappedRange().slice(byteOffset - start, byteOffset - start + byteLength);
  staging.unmap();
  staging.destroy();
  return bytes;
}

/** Downloads a tensor as a contiguous host tensor of its dtype (fp16/bf16 as bit patterns). */
export async function download(t: WebGpuTensor, device?: GPUDevice): Promise<HostTensor> {
  const dev = device ?? t.device ?? (await getDevice());
  const n = numel(t.shape);
  const out = hostTensor(t.dtype, t.shape);
  if (n === 0) return out;
  // The span of elements the view touches, read in one copy.
  let last = t.offset;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i] - 1) * t.strides[i];
  const size = bytesPerElement(t.dtype);
  const raw = await readBuffer(dev, t.buffer, t.offset * size, (last - t.offset + 1) * size);
  const src = t.dtype === "fp32" ? new Float32Array(raw) : new Uint16Array(raw);
  const shape = t.shape;
  const index = new Array<number>(shape.length).fill(0);
  for (let e = 0; e < n; e++) {
    let at = 0;
    for (let i = 0; i < shape.length; i++) at += index[i] * t.strides[i];
    out.data[e] = src[at];
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++index[i] < shape[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

/** Host values of a downloaded tensor as float32 (decoding fp16/bf16). */
export function hostValues(t: HostTensor): Float32Array {
  if (t.dtype === "fp32") return t.data as Float32Array;
  const decode = t.dtype === "fp16" ? fp16Value : bf16Value;
  return Float32Array.from(t.data as Uint16Array, decode);
}

export function tensorInfo(t: WebGpuTensor): TensorInfo {
  return { shape: t.shape, strides: t.strides, dtype: t.dtype, storage: t.buffer, offset: t.offset };
}

/**
 * Frees a tensor's buffer: an output of an attention call goes back to its device's pool for later calls
 * (buffer-pool.ts), any other buffer is destroyed. The tensor (and every view of its buffer) is dead afterwards.
 */
export function disposeTensor(t: WebGpuTensor): void {
  recycleBuffer(t.buffer);
}

/** The bridge the conformance runner, the CLI and tests use to move tensors to and from the GPU. */
export const webgpuBridge: TensorBridge<WebGpuTensor> = {
  kind: "webgpu",
  fromHost: (t) => upload(t),
  toHost: (t) => download(t),
  info: tensorInfo,
  dispose: disposeTensor,
};
