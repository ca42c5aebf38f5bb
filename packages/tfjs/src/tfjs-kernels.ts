import {
  ArgumentError,
  type AttentionInputs,
  type AttentionParams,
  contiguousStrides,
  type Gradients,
  type HostTensor,
} from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import { denseFloat32 } from "./tensor-bridge.js";

/**
 * A host-memory attention kernel callable synchronously, which is what a tfjs kernel function must be.
 * TE's CPU kernel (@te/native) provides one; any host implementation with these two calls can be
 * registered as tfjs kernels.
 */
export interface SyncHostAttention {
  /** The id of the host backend it implements (names the tfjs kernels). */
  readonly id: string;
  forward(inputs: AttentionInputs<HostTensor>, p: AttentionParams): { o: HostTensor; lse: HostTensor };
  /** Gradients of sum(o * dO) from the forward's o and lse (flash-attention style: no saved probabilities). */
  backwardFromStats(
    inputs: AttentionInputs<HostTensor>,
    o: HostTensor,
    lse: HostTensor,
    dO: HostTensor,
    p: AttentionParams,
  ): Gradients<HostTensor>;
}

/** tfjs kernel names of a host kernel's forward and backward. */
export const attentionKernelName = (hostId: string) => `TeAttention:${hostId}`;
export const attentionGradKernelName = (hostId: string) => `TeAttentionGrad:${hostId}`;

/** The non-tensor part of a call, carried to the kernels as attributes. */
export interface KernelAttrs {
  readonly params: AttentionParams;
  readonly extras: Omit<AttentionInputs<unknown>, "q" | "k" | "v" | "bias" | "softmaxOffset">;
}

/**
 * The kernels' tensor inputs, always all five: tfjs saves inputs for the gradient by name, so an
 * absent bias or softmax offset is passed as an empty tensor.
 */
const INPUT_NAMES = ["q", "k", "v", "bias", "softmaxOffset"] as const;
const isGiven = (t: tf.TensorInfo | undefined): t is tf.TensorInfo =>
  t !== undefined && t.shape.some((n) => n > 0);

/** What tfjs's cpu backend offers a kernel function: its arrays (no copy) and tensor construction. */
interface HostMemoryBackend {
  readSync(dataId: tf.DataId): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
}

const TFJS_HOST_BACKEND = "cpu";

function viewOf(backend: HostMemoryBackend, info: tf.TensorInfo): HostTensor {
  const data = backend.readSync(info.dataId) as Float32Array;
  return { dtype: "fp32", shape: info.shape, strides: contiguousStrides(info.shape), offset: 0, data };
}

const outputOf = (backend: HostMemoryBackend, t: HostTensor): tf.TensorInfo =>
  backend.makeTensorInfo([...t.shape], "float32", denseFloat32(t));

function input(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const t = inputs[name];
  if (!t) throw new ArgumentError(`inputs.${name}`, "a tensor input of the attention kernel");
  return t;
}

function hostInputs(
  backend: HostMemoryBackend,
  inputs: tf.NamedTensorInfoMap,
  attrs: KernelAttrs,
): AttentionInputs<HostTensor> {
  return {
    ...attrs.extras,
    q: viewOf(backend, input(inputs, "q")),
    k: viewOf(backend, input(inputs, "k")),
    v: viewOf(backend, input(inputs, "v")),
    bias: isGiven(inputs.bias) ? viewOf(backend, inputs.bias) : undefined,
    softmaxOffset: isGiven(inputs.softmaxOffset) ? viewOf(backend, inputs.softmaxOffset) : undefined,
  };
}

/**
 * Registers a synchronous host kernel as tfjs kernels on tfjs's cpu backend (forward: o and lse;
 * backward: dq, dk, dv and dbias/dSoftmaxOffset when taken) and the forward's gradient in tfjs's
 * gradient registry, so tf.grad, tf.variableGrads and optimizers run through it. Idempotent.
 */
export function registerTfjsKernels(host: SyncHostAttention): void {
  const forwardName = attentionKernelName(host.id);
  const backwardName = attentionGradKernelName(host.id);
  if (tf.getKernel(forwardName, TFJS_HOST_BACKEND)) return;

  tf.registerKernel({
    kernelName: forwardName,
    backendName: TFJS_HOST_BACKEND,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as unknown as HostMemoryBackend;
      const a = attrs as unknown as KernelAttrs;
      const { o, lse } = host.forward(hostInputs(b, inputs, a), a.params);
      return [outputOf(b, o), outputOf(b, lse)];
    },
  });

  tf.registerKernel({
    kernelName: backwardName,
    backendName: TFJS_HOST_BACKEND,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as unknown as HostMemoryBackend;
      const a = attrs as unknown as KernelAttrs;
      const g = host.backwardFromStats(
        hostInputs(b, inputs, a),
        viewOf(b, input(inputs, "o")),
        viewOf(b, input(inputs, "lse")),
        viewOf(b, input(inputs, "dO")),
        a.params,
      );
      const dbias = g.dbias ?? zerosLike(input(inputs, "bias"));
      const dOffset = g.dSoftmaxOffset ?? zerosLike(input(inputs, "softmaxOffset"));
      return [g.dq, g.dk, g.dv, dbias, dOffset].map((t) => outputOf(b, t));
    },
  });

  tf.registerGradient({
    kernelName: forwardName,
    inputsToSave: [...INPUT_NAMES],
    outputsToSave: [true, true],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as unknown as KernelAttrs;
      // Only o's gradient is propagated: lse is a statistic, not a differentiable output here.
      const dO = Array.isArray(dy) ? dy[0] : dy;
      const n = INPUT_NAMES.length;
      const named = Object.fromEntries(INPUT_NAMES.map((name, i) => [name, saved[i]]));
      // One backward kernel yields every gradient. It runs here, not in the per-input closures: tfjs runs
      // each closure in its own scope, which would free the gradients the first closure did not return.
      const grads = tf
        .engine()
        .runKernel(
          backwardName,
          { ...named, o: saved[n], lse: saved[n + 1], dO },
          a as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      return Object.fromEntries(INPUT_NAMES.map((name, i) => [name, () => grads[i]]));
    },
  });
}

function zerosLike(t: tf.TensorInfo): HostTensor {
  const n = t.shape.reduce((x, y) => x * y, 1);
  return {
    dtype: "fp32",
    shape: t.shape,
    strides: contiguousStrides(t.shape),
    offset: 0,
    data: new Float32Array(n),
  };
}

/** Whether a host kernel's tfjs kernels are registered for the active tfjs backend. */
export function tfjsKernelsReady(hostId: string): boolean {
  return tf.getKernel(attentionKernelName(hostId), tf.getBackend()) !== undefined;
}

/** Runs a registered host kernel on tf.Tensors through tfjs's engine (recorded on the gradient tape). */
export function runAttentionKernel(
  hostId: string,
  inputs: AttentionInputs<tf.Tensor>,
  p: AttentionParams,
): { o: tf.Tensor; lse: tf.Tensor } {
  const { q, k, v, bias, softmaxOffset, ...extras } = inputs;
  const attrs: KernelAttrs = { params: p, extras };
  return tf.tidy(() => {
    const empty = tf.zeros([0]);
    const tensors = { q, k, v, bias: bias ?? empty, softmaxOffset: softmaxOffset ?? empty };
    const [o, lse] = tf
      .engine()
      .runKernel(attentionKernelName(hostId), tensors, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { o, lse };
  });
}
