/**
 * What the flash and unfused backends share around their kernels: bindings of tensors, the per-call `aux`
 * buffer and uniforms (shapes, strides, dtype codes and feature switches), dropout's stream, and the conversion
 * of f32 results into separate contiguous tensors of the call's dtype.
 */
import {
  ArgumentError,
  type AttentionInputs,
  type AttentionParams,
  dropoutKey,
  contiguousStrides,
  dropoutThreshold,
  numel,
} from "@te/core";
import { pooledBuffer, USAGE_STORAGE, zeroedBuffer } from "./buffer-pool.js";
import { type CallLayout, callLayout } from "./call-layout.js";
import { getDevice } from "./device.js";
import type { Binding, BufferCopy, Program } from "./program.js";
import { WEBGPU_DTYPES, type WebGpuDType, type WebGpuTensor, wrapBuffer } from "./tensor.js";
import { grid1d, packWgsl } from "./wgsl/elementwise.js";
import { BIAS_KIND_CODE } from "./wgsl/score.js";
import { DTYPE_CODE } from "./wgsl/storage.js";

const SOFTMAX_CODE: Record<AttentionParams["softmaxType"], number> = {
  vanilla: 0,
  off_by_one: 1,
  learnable: 2,
};

export interface Call {
  readonly device: GPUDevice;
  readonly p: AttentionParams;
  readonly inputs: AttentionInputs<WebGpuTensor>;
  /** Storage dtype of q, k, v and dO (and of o, dq, dk, dv). */
  readonly dtype: WebGpuDType;
  readonly layout: CallLayout;
  readonly uniforms: Record<string, number>;
  readonly aux: GPUBuffer;
  /** Bound where a program declares an optional tensor (bias, softmax offset) the call does not have. */
  readonly none: GPUBuffer;
}

function dtypeOf(name: string, t: WebGpuTensor | undefined, expected?: WebGpuDType): WebGpuDType {
  if (!t) return "fp32";
  if (!(WEBGPU_DTYPES as readonly string[]).includes(t.dtype))
    throw new ArgumentError(`inputs.${name}.dtype`, "fp32, fp16 or bf16", t.dtype);
  if (expected && t.dtype !== expected) throw new ArgumentError(`inputs.${name}.dtype`, expected, t.dtype);
  return t.dtype;
}

/** Scratch or result of `count` f32 values, zero when the call's programs run (buffer-pool.ts zeroedBuffer). */
export function f32Buffer(device: GPUDevice, count: number, label: string): GPUBuffer {
  return zeroedBuffer(device, count * 4, label);
}

export function binding(
  name: string,
  buffer: GPUBuffer,
  element: Binding["element"] = "f32",
  access: Binding["access"] = "read",
): Binding {
  return { name, access, element, buffer };
}

/** The binding `<name>_buf` of an input tensor (32-bit words), read through `ld_<name>`. */
export const tensorBinding = (name: string, t: WebGpuTensor): Binding =>
  binding(`${name}_buf`, t.buffer, "u32");

/** Starts a call: checks the inputs, lays out its geometry and uploads `aux`. */
export async function beginCall(inputs: AttentionInputs<WebGpuTensor>, p: AttentionParams): Promise<Call> {
  const dtype = dtypeOf("q", inputs.q);
  if (dtype !== p.dtype) throw new ArgumentError("inputs.q.dtype", `the params' dtype ${p.dtype}`, dtype);
  dtypeOf("k", inputs.k, dtype);
  dtypeOf("v", inputs.v, dtype);
  // A call runs on its tensors' device when they name one (a per-call device), else on the package's.
  const device = inputs.q.device ?? (await getDevice());
  const layout = callLayout(inputs, p);
  if (p.softmaxType === "learnable" && !inputs.softmaxOffset) {
    throw new ArgumentError(
      "inputs.softmaxOffset",
      "the learnable softmax offset [h] for softmax type learnable",
    );
  }
  const withBias = p.biasType === "pre_scale_bias" || p.biasType === "post_scale_bias";
  const uniforms: Record<string, number> = {
    ...layout.uniforms,
    dt_qkv: DTYPE_CODE[dtype],
    dt_bias: DTYPE_CODE[dtypeOf("bias", inputs.bias)],
    dt_sink: DTYPE_CODE[dtypeOf("softmaxOffset", inputs.softmaxOffset)],
    bias_kind: BIAS_KIND_CODE[p.biasType],
    amask: p.maskType === "arbitrary" ? 1 : 0,
    softmax: SOFTMAX_CODE[p.softmaxType],
    dropout_on: p.dropout > 0 ? 1 : 0,
    bias_grad: withBias && p.biasRequiresGrad ? 1 : 0,
  };
  if (p.dropout > 0) {
    // Without a caller's seed, draw one; it stays with the call so backward drops the same elements.
    const seed = inputs.dropoutSeed ?? Math.floor(Math.random() * 2 ** 32);
    const [lo, hi] = dropoutKey(seed);
    uniforms.dropout_threshold = dropoutThreshold(p.dropout);
    uniforms.dropout_scale = 1 / (1 - p.dropout);
    uniforms.seed_lo = lo;
    uniforms.seed_hi = hi;
    uniforms.rng_offset = (inputs.dropoutOffset ?? 0) >>> 0;
  }
  const aux = device.createBuffer({
    label: "te.aux",
    size: Math.max(16, layout.aux.byteLength),
    usage: USAGE_STORAGE(),
  });
  device.queue.writeBuffer(aux, 0, layout.aux);
  return { device, p, inputs, dtype, layout, uniforms, aux, none: placeholderOf(device) };
}

const placeholders = new WeakMap<GPUDevice, GPUBuffer>();

/** The device's placeholder for absent optional tensors: never written, so one serves every call. */
function placeholderOf(device: GPUDevice): GPUBuffer {
  let none = placeholders.get(device);
  if (!none) {
    none = device.createBuffer({ label: "te.none", size: 16, usage: USAGE_STORAGE() });
    placeholders.set(device, none);
  }
  return none;
}

/** A binding of an optional tensor of the call, or of the empty placeholder. */
export function optionalBinding(call: Call, name: "bias" | "sink", t: WebGpuTensor | undefined): Binding {
  return t ? tensorBinding(name, t) : binding(`${name}_buf`, call.none, "u32");
}

/** Bindings of the programs that evaluate scores: aux, the tensors read, then the bias. */
export function inputBindings(call: Call, tensors: readonly ("q" | "k" | "v")[]): Binding[] {
  const { inputs } = call;
  const withBias = call.p.biasType === "pre_scale_bias" || call.p.biasType === "post_scale_bias";
  return [
    binding("aux", call.aux, "u32"),
    ...tensors.map((t) => tensorBinding(t, inputs[t])),
    optionalBinding(call, "bias", withBias ? inputs.bias : undefined),
  ];
}

/** A region of an f32 result buffer: `count` values from word `at`. */
export interface F32Region {
  readonly buffer: GPUBuffer;
  readonly at: number;
}

/** The call's output tensors and the work that fills them, to run with the call's programs (one submission). */
export interface Outputs {
  readonly tensors: WebGpuTensor[];
  readonly programs: Program[];
  readonly copies: BufferCopy[];
}

/**
 * New contiguous tensors of `dtype` from f32 regions (from the pool: disposeTensor gives them back): fp32 by a
 * copy, fp16/bf16 by a packing program. Both write every element, so a recycled buffer needs no clearing.
 */
export function outputsOf(
  device: GPUDevice,
  items: readonly { region: F32Region; shape: readonly number[]; dtype: WebGpuDType; label: string }[],
): Outputs {
  const programs: Program[] = [];
  const copies: BufferCopy[] = [];
  const tensors = items.map(({ region, shape, dtype, label }) => {
    const count = numel(shape);
    const bytes = Math.max(4, Math.ceil((count * (dtype === "fp32" ? 4 : 2)) / 4) * 4);
    const buffer = pooledBuffer(device, bytes, label);
    if (dtype === "fp32") {
      if (count > 0)
        copies.push({ from: region.buffer, fromByte: region.at * 4, to: buffer, bytes: count * 4 });
    } else {
      programs.push({
        name: `te.pack_${dtype}`,
        key: dtype,
        source: () => packWgsl(dtype),
        uniforms: [
          ["count", "u32"],
          ["src_at", "u32"],
        ],
        uniformValues: { count, src_at: region.at },
        bindings: [binding("src", region.buffer), binding("dst", buffer, "u32", "read_write")],
        workgroups: grid1d(Math.ceil(count / 2)),
      });
    }
    return wrapBuffer(buffer, shape, dtype, contiguousStrides(shape), 0, device);
  });
  return { tensors, programs, copies };
}

export function endCall(call: Call): void {
  call.aux.destroy();
}
