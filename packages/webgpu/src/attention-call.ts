/**
 * What the flash and unfused backends share around their kernels: the features baked into a call's programs,
 * bindings of tensors, the per-call `aux` buffer and uniforms, dropout's stream, and the conversion of f32
 * results into separate contiguous tensors of the call's dtype.
 */
import {
  ArgumentError,
  type AttentionInputs,
  type AttentionParams,
  dropoutKey,
  dropoutThreshold,
  numel,
} from "@te/core";
import { type CallLayout, callLayout } from "./call-layout.js";
import { getDevice } from "./device.js";
import type { Binding, Program } from "./program.js";
import { runPrograms } from "./program.js";
import { WEBGPU_DTYPES, type WebGpuDType, type WebGpuTensor, wrapBuffer } from "./tensor.js";
import type { AttentionFeatures } from "./wgsl/attention-common.js";
import { grid1d, packWgsl } from "./wgsl/elementwise.js";
import type { BiasKind } from "./wgsl/score.js";
import { storageElement } from "./wgsl/storage.js";

export interface Call {
  readonly device: GPUDevice;
  readonly p: AttentionParams;
  readonly inputs: AttentionInputs<WebGpuTensor>;
  readonly features: AttentionFeatures;
  readonly layout: CallLayout;
  readonly uniforms: Record<string, number>;
  readonly aux: GPUBuffer;
}

const BIAS_KIND: Record<AttentionParams["biasType"], BiasKind> = {
  no_bias: "none",
  pre_scale_bias: "pre",
  post_scale_bias: "post",
  alibi: "alibi",
};

function dtypeOf(name: string, t: WebGpuTensor | undefined, expected?: WebGpuDType): WebGpuDType {
  if (!t) return "fp32";
  if (!(WEBGPU_DTYPES as readonly string[]).includes(t.dtype)) throw new ArgumentError(`inputs.${name}.dtype`, "fp32, fp16 or bf16", t.dtype);
  if (expected && t.dtype !== expected) throw new ArgumentError(`inputs.${name}.dtype`, expected, t.dtype);
  return t.dtype;
}

export const USAGE_STORAGE = (): number => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function f32Buffer(device: GPUDevice, count: number, label: string): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(4, count * 4), usage: USAGE_STORAGE() });
}

export function binding(name: string, buffer: GPUBuffer, element: Binding["element"] = "f32", access: Binding["access"] = "read"): Binding {
  return { name, access, element, buffer };
}

/** The binding `<name>_buf` of an input tensor, read through `ld_<name>`. */
export const tensorBinding = (name: string, t: WebGpuTensor): Binding => binding(`${name}_buf`, t.buffer, storageElement(t.dtype));

/** Starts a call: checks the inputs, lays out its geometry and uploads `aux`. */
export async function beginCall(inputs: AttentionInputs<WebGpuTensor>, p: AttentionParams): Promise<Call> {
  const dtype = dtypeOf("q", inputs.q);
  if (dtype !== p.dtype) throw new ArgumentError("inputs.q.dtype", `the params' dtype ${p.dtype}`, dtype);
  dtypeOf("k", inputs.k, dtype);
  dtypeOf("v", inputs.v, dtype);
  const device = await getDevice();
  const layout = callLayout(inputs, p);
  const features: AttentionFeatures = {
    dtype,
    bias: BIAS_KIND[p.biasType],
    biasDtype: dtypeOf("bias", inputs.bias),
    arbitraryMask: p.maskType === "arbitrary",
    softmax: p.softmaxType,
    sinkDtype: dtypeOf("softmaxOffset", inputs.softmaxOffset),
    dropout: p.dropout > 0,
  };
  if (p.softmaxType === "learnable" && !inputs.softmaxOffset) {
    throw new ArgumentError("inputs.softmaxOffset", "the learnable softmax offset [h] for softmax type learnable");
  }
  const uniforms = { ...layout.uniforms };
  if (features.dropout) {
    // Without a caller's seed, draw one; it stays with the call so backward drops the same elements.
    const seed = inputs.dropoutSeed ?? Math.floor(Math.random() * 2 ** 32);
    const [lo, hi] = dropoutKey(seed);
    uniforms.dropout_threshold = dropoutThreshold(p.dropout);
    uniforms.dropout_scale = 1 / (1 - p.dropout);
    uniforms.seed_lo = lo;
    uniforms.seed_hi = hi;
    uniforms.rng_offset = (inputs.dropoutOffset ?? 0) >>> 0;
  }
  const aux = device.createBuffer({ label: "te.aux", size: Math.max(16, layout.aux.byteLength), usage: USAGE_STORAGE() });
  device.queue.writeBuffer(aux, 0, layout.aux);
  return { device, p, inputs, features, layout, uniforms, aux };
}

/** Bindings every attention program of a call starts with: aux, then the tensors it reads. */
export function inputBindings(call: Call, tensors: readonly ("q" | "k" | "v")[]): Binding[] {
  const { inputs, features } = call;
  const list = [binding("aux", call.aux, "u32"), ...tensors.map((t) => tensorBinding(t, inputs[t]))];
  if ((features.bias === "pre" || features.bias === "post") && inputs.bias) list.push(tensorBinding("bias", inputs.bias));
  return list;
}

/** A region of an f32 result buffer: `count` values from word `at`. */
export interface F32Region {
  readonly buffer: GPUBuffer;
  readonly at: number;
}

/**
 * New contiguous tensors of `dtype` from f32 regions: fp32 by copying, fp16/bf16 by a packing program.
 * The regions' buffers are left to the caller.
 */
export async function materialise(
  device: GPUDevice,
  items: readonly { region: F32Region; shape: readonly number[]; dtype: WebGpuDType; label: string }[],
): Promise<WebGpuTensor[]> {
  const encoder = device.createCommandEncoder();
  const programs: Program[] = [];
  const tensors = items.map(({ region, shape, dtype, label }) => {
    const count = numel(shape);
    const bytes = Math.max(4, Math.ceil((count * (dtype === "fp32" ? 4 : 2)) / 4) * 4);
    const buffer = device.createBuffer({ label, size: bytes, usage: USAGE_STORAGE() });
    if (dtype === "fp32") {
      if (count > 0) encoder.copyBufferToBuffer(region.buffer, region.at * 4, buffer, 0, count * 4);
    } else {
      programs.push({
        name: `te.pack_${dtype}`,
        key: dtype,
        source: () => packWgsl(dtype),
        uniforms: [["count", "u32"], ["src_at", "u32"]],
        uniformValues: { count, src_at: region.at },
        bindings: [binding("src", region.buffer), binding("dst", buffer, "u32", "read_write")],
        workgroups: grid1d(Math.ceil(count / 2)),
      });
    }
    return wrapBuffer(buffer, shape, dtype);
  });
  device.queue.submit([encoder.finish()]);
  if (programs.length > 0) await runPrograms(device, programs);
  return tensors;
}

export function endCall(call: Call): void {
  call.aux.destroy();
}
