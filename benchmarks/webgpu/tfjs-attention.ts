/**
 * The attention of the benchmark as tfjs ops on tfjs's WebGPU backend, in Node: Dawn's navigator.gpu (the
 * `webgpu` package) is installed as globalThis.navigator.gpu before the backend starts. Inputs are uploaded in
 * [b, h, s, d] order (tfjs's batched matMul layout), so the timed call is exactly matMul(q, k^T), scale, mask
 * add (causal), softmax, matMul(p, v), and for fwd+bwd tf.grads of that with respect to q, k, v.
 */
import * as tf from "@tensorflow/tfjs-core";
// tfjs-core alone has no gradient functions (the full @tensorflow/tfjs registers them); tf.grads needs them.
import "@tensorflow/tfjs-core/dist/register_all_gradients";
import type { HostTensor } from "@te/core";
import { create, globals } from "webgpu";

/** The parts of tfjs-backend-webgpu's WebGPUBackend the benchmark uses (not in its public typings). */
interface WebGpuBackendInternals {
  device: GPUDevice;
  adapterInfo?: unknown;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
  bufferManager: { numBytesUsed: number; acquireBuffer: (...args: unknown[]) => GPUBuffer };
}

export interface TfjsCall {
  /** Submits one call; returns its disposer. */
  run(): () => void;
  /** Frees the inputs. */
  dispose(): void;
}

export interface TfjsAttention {
  device: GPUDevice;
  adapterInfo: unknown;
  /** A call of the attention on the given [b, s, h, d] host tensors (q, k, v, dO). */
  prepare(host: HostTensor[], causal: boolean, scale: number, withBackward: boolean): TfjsCall;
  /**
   * GPU ms of one run of `call` by tfjs's own profiling (tf.time: timestamps around each of its kernels,
   * summed), or null where its device has no timestamp-query.
   */
  kernelMs(call: TfjsCall): Promise<number | null>;
  /** Starts a peak measurement of the bytes tfjs's buffer manager has in use. */
  startPeak(): void;
  peakSinceStart(): number;
  /** The forward output in [b, s, h, d] order. */
  output(host: HostTensor[], causal: boolean, scale: number): Promise<Float32Array>;
}

/** TE_WEBGPU_DAWN_FLAGS, as @te/webgpu's getDevice reads them: both devices get the same Dawn toggles. */
const dawnFlags = (): string[] =>
  (process.env.TE_WEBGPU_DAWN_FLAGS ?? "").split(/\s+/).filter((f) => f.length > 0);

export async function tfjsAttention(): Promise<TfjsAttention> {
  Object.assign(globalThis, globals);
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (!nav?.gpu)
    Object.defineProperty(globalThis, "navigator", {
      configurable: true,
      value: { ...nav, gpu: create(dawnFlags()) },
    });
  // The backend registers itself on import only where navigator.gpu exists, hence imported after the above.
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) throw new Error("tf.setBackend('webgpu') failed");
  await tf.ready();
  const backend = tf.backend() as unknown as WebGpuBackendInternals;
  const manager = backend.bufferManager;
  let mark = 0;
  let peak = 0;
  const acquire = manager.acquireBuffer.bind(manager);
  manager.acquireBuffer = (...args: unknown[]) => {
    const buffer = acquire(...args);
    peak = Math.max(peak, manager.numBytesUsed);
    return buffer;
  };

  const attention = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | null, scale: number) => {
    let scores = tf.mul(tf.matMul(q, k, false, true), scale);
    if (mask) scores = tf.add(scores, mask);
    return tf.matMul(tf.softmax(scores), v);
  };
  const inputsOf = (host: HostTensor[], causal: boolean) => {
    const [b, s, h, d] = host[0].shape;
    const bhsd = host.map((t) =>
      tf.tidy(() => tf.transpose(tf.tensor4d(t.data as Float32Array, [b, s, h, d]), [0, 2, 1, 3])),
    );
    // Large negative (not -Infinity) above the diagonal, as tfjs models write causal masks.
    const mask = causal
      ? tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([s, s]), -1, 0)), -1e9))
      : null;
    return { bhsd, mask };
  };

  return {
    device: backend.device,
    adapterInfo: backend.adapterInfo ?? null,
    prepare(host, causal, scale, withBackward) {
      const { bhsd, mask } = inputsOf(host, causal);
      const [q, k, v, dO] = bhsd;
      const run = () => {
        const outs = tf.tidy(() =>
          withBackward
            ? tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a, b, c, mask, scale))(
                [q, k, v],
                dO,
              )
            : [attention(q, k, v, mask, scale)],
        );
        // tfjs batches dispatches in an open compute pass until a read; end and submit it so that
        // onSubmittedWorkDone covers this call.
        if (backend.commandEncoder) {
          backend.endComputePassEncoder();
          backend.submitQueue();
        }
        return () => tf.dispose(outs);
      };
      return { run, dispose: () => tf.dispose([...bhsd, ...(mask ? [mask] : [])]) };
    },
    async kernelMs(call) {
      if (!backend.device.features.has("timestamp-query")) return null;
      let dispose = () => {};
      const timing = await tf.time(() => {
        dispose = call.run();
      });
      dispose();
      return timing.kernelMs as number;
    },
    startPeak() {
      mark = manager.numBytesUsed;
      peak = mark;
    },
    peakSinceStart: () => peak - mark,
    async output(host, causal, scale) {
      const { bhsd, mask } = inputsOf(host, causal);
      const o = tf.tidy(() => tf.transpose(attention(bhsd[0], bhsd[1], bhsd[2], mask, scale), [0, 2, 1, 3]));
      const values = (await o.data()) as Float32Array;
      tf.dispose([o, ...bhsd, ...(mask ? [mask] : [])]);
      return values;
    },
  };
}
